"""Market regime per bar: trending, ranging or volatile, with the values that decided it.

Rules, applied in this order to every bar after the warm-up (thresholds in :class:`RegimeRules`):

1. **volatile**: the Bollinger band width ``(upper - lower) / middle`` is at least
   ``volatile_ratio`` (1.5) times its median over the previous ``width_lookback`` (100) bars: the
   market's swings have widened well beyond what was normal for it just before. Relative to its own
   recent past, so the rule works on 1m and on 1d candles alike.
2. **trending**: otherwise, ADX(14) at least ``trend_adx`` (25): a directional move is under way.
3. **ranging**: otherwise (ADX below 25, bands not unusually wide): price oscillates in a range,
   the regime a grid is made for.

Bars before ADX, the bands and at least ``min_history`` (20) widths exist are ``warming_up``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helios_pipeline.signals import indicators as ind
from helios_pipeline.signals.inputs import prepare

TRENDING, RANGING, VOLATILE, WARMING_UP = "trending", "ranging", "volatile", "warming_up"


@dataclass(frozen=True)
class RegimeRules:
    """Thresholds of the regime rules (see the module docstring)."""

    adx_period: int = 14
    bb_period: int = 20
    bb_k: float = 2.0
    trend_adx: float = 25.0
    volatile_ratio: float = 1.5
    width_lookback: int = 100
    min_history: int = 20

    @property
    def shortest_history(self) -> int:
        """Fewest candles :func:`classify_regime` accepts."""
        return max(2 * self.adx_period, self.bb_period)


def classify_regime(candles: pd.DataFrame, rules: RegimeRules = RegimeRules()) -> pd.DataFrame:
    """The regime of every bar of ``candles`` (``high``, ``low``, ``close``) and its evidence.

    Returns:
        On the candles' index: ``regime``, and the evidence ``adx``, ``bb_width``,
        ``bb_width_median`` (of the previous ``width_lookback`` bars) and ``width_ratio``.

    Raises:
        ValueError: Bad candles (see :func:`helios_pipeline.signals.inputs.prepare`).
    """
    data = prepare([("high", candles["high"]), ("low", candles["low"]),
                    ("close", candles["close"])], rules.shortest_history,
                   "the regime's longest period")
    high, low, close = data.arrays
    trend = ind.adx_values(high, low, close, rules.adx_period)
    upper, middle, lower = (np.asarray(band, dtype=np.float64)
                            for band in ind.bollinger(close, rules.bb_period, rules.bb_k))
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (upper - lower) / middle
    usual = (pd.Series(width).shift(1)
             .rolling(rules.width_lookback, min_periods=rules.min_history).median().to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(usual > 0, width / usual, np.where(width > 0, np.inf, 1.0))
    regime = np.where(ratio >= rules.volatile_ratio, VOLATILE,
                      np.where(trend >= rules.trend_adx, TRENDING, RANGING)).astype(object)
    regime[np.isnan(trend) | np.isnan(usual)] = WARMING_UP
    return pd.DataFrame({"regime": regime, "adx": trend, "bb_width": width,
                         "bb_width_median": usual, "width_ratio": ratio}, index=candles.index)


def explain(row: pd.Series, rules: RegimeRules = RegimeRules()) -> str:
    """One sentence saying why a row of :func:`classify_regime` got its regime."""
    regime = row["regime"]
    adx, ratio = float(row["adx"]), float(row["width_ratio"])
    if regime == WARMING_UP:
        return "not enough history yet for ADX and the usual band width"
    if regime == VOLATILE:
        return (f"volatile: band width {ratio:.2f}x its recent median "
                f"(>= {rules.volatile_ratio})")
    if regime == TRENDING:
        return (f"trending: ADX {adx:.1f} >= {rules.trend_adx}, band width {ratio:.2f}x its "
                "recent median")
    return (f"ranging: ADX {adx:.1f} < {rules.trend_adx}, band width {ratio:.2f}x its recent "
            f"median (< {rules.volatile_ratio})")
