"""Grid suggestion for a symbol: range, number of levels and spacing, with the reasoning.

Method (parameters in :class:`GridRules`):

1. **Range** starts as the volume profile's value area (where 70% of the volume traded): the
   prices the market accepted over the window.
2. It is **stretched to strong levels**: the strongest support (strength >= ``min_strength``)
   below the value area and within ``reach_atr`` ATRs of its low becomes the lower bound, and
   likewise the strongest resistance above the high, so the outer grid lines rest on levels the
   market turned at.
3. **Step** = ``spacing_atr`` x ATR(14) of ``atr_timeframe`` bars (default 1h): one grid line per
   typical hour's move, so lines are crossed often but not by noise. It is never below
   ``min_step_pct`` of the price (fees must fit inside one step).
4. **Levels** = range / step, kept within ``min_levels``..``max_levels`` (the step then follows).
5. **Spacing**: geometric (equal percentage steps) when the upper bound is more than
   ``geometric_above`` (20%) above the lower, so each step earns about the same percentage at
   either end; arithmetic (equal price steps) otherwise.

The regime at the last bar is reported; in a trending or volatile market the reasoning says that
a grid is at risk of filling on one side only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from helios_pipeline.signals import indicators as ind
from helios_pipeline.signals.inputs import FloatArray
from helios_pipeline.signals.levels import Level, LevelRules, find_levels
from helios_pipeline.signals.profile import VolumeProfile, volume_profile
from helios_pipeline.signals.regime import RANGING, RegimeRules, classify_regime, explain


@dataclass(frozen=True)
class GridRules:
    """Parameters of the grid method (see the module docstring)."""

    atr_timeframe: str = "1h"
    atr_period: int = 14
    spacing_atr: float = 1.0
    min_step_pct: float = 0.002
    min_levels: int = 4
    max_levels: int = 100
    min_strength: float = 0.5
    reach_atr: float = 3.0
    geometric_above: float = 0.20
    profile_bins: int = 100


@dataclass(frozen=True)
class GridSuggestion:
    """A suggested grid and why."""

    lower: float
    upper: float
    levels: int
    spacing: str
    step: float
    prices: tuple[float, ...]
    atr: float
    last_close: float
    regime: str
    reasoning: tuple[str, ...] = field(default=())

    def as_metadata(self) -> dict[str, object]:
        """Plain values (for Dagster metadata and JSON)."""
        values = asdict(self)
        values["prices"] = list(self.prices)
        values["reasoning"] = "\n".join(self.reasoning)
        return values


def suggest_grid(candles: pd.DataFrame, rules: GridRules = GridRules(),
                 levels: list[Level] | None = None,
                 profile: VolumeProfile | None = None) -> GridSuggestion:
    """A grid for ``candles`` (float ``high``, ``low``, ``close``, ``volume`` on a UTC index).

    Args:
        candles: The window to place the grid from (for example a month of 1m candles).
        rules: Parameters.
        levels: Support/resistance already found (default: :func:`find_levels` on the ATR bars).
        profile: Volume profile already computed (default: from ``candles``).

    Raises:
        ValueError: Too few candles for the ATR on ``rules.atr_timeframe`` bars, or bad candles.
    """
    bars = _bars(candles, rules.atr_timeframe)
    atr = float(ind.atr_values(*_hlc(bars), rules.atr_period)[-1])
    last_close = float(candles["close"].iloc[-1])
    profile = profile or volume_profile(candles, bins=rules.profile_bins)
    levels = find_levels(bars, LevelRules()) if levels is None else levels
    reasons = [f"value area {profile.value_area_low:.8g}..{profile.value_area_high:.8g} holds "
               f"70% of {profile.total_volume:.8g} traded over {profile.candles} candles"]
    lower, upper = _stretch(profile, levels, atr, rules, reasons)
    step = max(rules.spacing_atr * atr, rules.min_step_pct * last_close)
    reasons.append(f"step {step:.8g} = max({rules.spacing_atr} x ATR({rules.atr_period}, "
                   f"{rules.atr_timeframe}) {atr:.8g}, {rules.min_step_pct:.2%} of the price)")
    count = int(np.clip(np.floor((upper - lower) / step), rules.min_levels, rules.max_levels))
    geometric = upper > lower * (1 + rules.geometric_above)
    prices = (np.geomspace(lower, upper, count + 1) if geometric
              else np.linspace(lower, upper, count + 1))
    spacing = "geometric" if geometric else "arithmetic"
    reasons.append(f"{count} levels, {spacing}: the range is {upper / lower - 1:.1%} wide "
                   f"({'more' if geometric else 'not more'} than {rules.geometric_above:.0%})")
    regime = _regime(bars, reasons)
    return GridSuggestion(lower=lower, upper=upper, levels=count, spacing=spacing,
                          step=float(prices[1] - prices[0]), prices=tuple(map(float, prices)),
                          atr=atr, last_close=last_close, regime=regime,
                          reasoning=tuple(reasons))


def _stretch(profile: VolumeProfile, levels: list[Level], atr: float, rules: GridRules,
             reasons: list[str]) -> tuple[float, float]:
    lower, upper = profile.value_area_low, profile.value_area_high
    strong = [level for level in levels if level.strength >= rules.min_strength]
    below = [lv for lv in strong if lower - rules.reach_atr * atr <= lv.price < lower]
    above = [lv for lv in strong if upper < lv.price <= upper + rules.reach_atr * atr]
    if below:
        best = max(below, key=lambda lv: lv.strength)
        lower = best.price
        reasons.append(f"lower bound moved to a level at {best.price:.8g} (strength "
                       f"{best.strength:.2f}, {best.touches} touches)")
    if above:
        best = max(above, key=lambda lv: lv.strength)
        upper = best.price
        reasons.append(f"upper bound moved to a level at {best.price:.8g} (strength "
                       f"{best.strength:.2f}, {best.touches} touches)")
    if upper <= lower:
        raise ValueError(f"the candles trade in no range ({lower}..{upper}); a grid needs one.")
    return lower, upper


def _regime(bars: pd.DataFrame, reasons: list[str]) -> str:
    table = classify_regime(bars, RegimeRules()) if len(bars) >= 28 else None
    if table is None:
        reasons.append("regime unknown: fewer than 28 bars")
        return "unknown"
    last = table.iloc[-1]
    reasons.append(f"regime now {explain(last)}")
    if last["regime"] not in (RANGING, "warming_up"):
        reasons.append("a grid in this regime risks filling on one side only; size it with care")
    return str(last["regime"])


def _hlc(bars: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray]:
    return (bars["high"].to_numpy(dtype=np.float64), bars["low"].to_numpy(dtype=np.float64),
            bars["close"].to_numpy(dtype=np.float64))


def _bars(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """``candles`` as ``timeframe`` bars; buckets without candles (gaps) are left out."""
    frame = candles[["high", "low", "close", "volume"]].astype("float64")
    if not isinstance(frame.index, pd.DatetimeIndex):
        return frame
    bars = frame.resample(pd.Timedelta(timeframe), label="left", closed="left").agg(
        {"high": "max", "low": "min", "close": "last", "volume": "sum"})
    return bars.dropna(subset=["close"])
