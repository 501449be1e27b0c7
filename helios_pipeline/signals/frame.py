"""Every indicator as columns of one frame, batch and incremental, under the same names.

This is what the Dagster assets store and what ``MarketDataQuery.indicators`` returns: one row per
candle (open time), one column per indicator value, NaN in each indicator's warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from helios_pipeline.signals import indicators as ind
from helios_pipeline.signals.directional import ADX
from helios_pipeline.signals.incremental import (
    ATR,
    MACD,
    RSI,
    Bollinger,
    CandleLike,
    FloatFeed,
)
from helios_pipeline.signals.inputs import prepare


@dataclass(frozen=True)
class IndicatorParams:
    """Periods of the standard indicator set (the TA-Lib defaults traders expect)."""

    rsi: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_k: float = 2.0
    atr: int = 14
    adx: int = 14

    @property
    def longest(self) -> int:
        """Fewest candles :func:`indicator_frame` accepts."""
        return max(self.rsi, self.macd_slow, self.bb_period, self.atr, self.adx)


DEFAULT_PARAMS = IndicatorParams()
COLUMNS = ("rsi", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower",
           "atr", "adx")


def indicator_frame(candles: pd.DataFrame,
                    params: IndicatorParams = DEFAULT_PARAMS) -> pd.DataFrame:
    """All standard indicators of ``candles`` (columns ``high``, ``low``, ``close``).

    The result has the candles' index and the :data:`COLUMNS`. Decimal columns are read as float.

    Raises:
        ValueError: Bad candles (see :func:`helios_pipeline.signals.inputs.prepare`) or fewer
            candles than the longest period.
    """
    data = prepare([("high", candles["high"]), ("low", candles["low"]),
                    ("close", candles["close"])], params.longest, "the longest indicator period")
    high, low, close = data.arrays
    line, signal, hist = ind.macd_values(close, params.macd_fast, params.macd_slow,
                                         params.macd_signal)
    upper, middle, lower = (np.asarray(band, dtype=np.float64) for band in
                            ind.bollinger(close, params.bb_period, params.bb_k))
    columns = {
        "rsi": ind.rsi_values(close, params.rsi), "macd": line, "macd_signal": signal,
        "macd_hist": hist, "bb_upper": upper, "bb_middle": middle, "bb_lower": lower,
        "atr": ind.atr_values(high, low, close, params.atr),
        "adx": ind.adx_values(high, low, close, params.adx),
    }
    return pd.DataFrame(columns, index=candles.index)


class IndicatorSet:
    """The standard indicators, updated together one closed candle at a time."""

    __slots__ = ("_adx", "_atr", "_bands", "_feed", "_macd", "_rsi", "params")

    def __init__(self, params: IndicatorParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self._rsi = RSI(params.rsi)
        self._macd = MACD(params.macd_fast, params.macd_slow, params.macd_signal)
        self._bands = Bollinger(params.bb_period, params.bb_k)
        self._atr = ATR(params.atr)
        self._adx = ADX(params.adx)
        self._feed = FloatFeed()

    def update(self, candle: CandleLike) -> dict[str, float]:
        """Take one closed candle; return every indicator at it (NaN in a warm-up)."""
        # Check the candle once; every indicator then steps on plain floats.
        high, low, close = self._feed.read(candle)
        line = self._macd.step(close)
        bands = self._bands.step(close)
        return {
            "rsi": self._rsi.step(close), "macd": line.macd, "macd_signal": line.signal,
            "macd_hist": line.histogram, "bb_upper": bands.upper, "bb_middle": bands.middle,
            "bb_lower": bands.lower, "atr": self._atr.step(high, low, close),
            "adx": self._adx.step(high, low, close),
        }

def is_warm(values: dict[str, float]) -> bool:
    """Whether every indicator has a value (the warm-up is over)."""
    return not any(math.isnan(value) for value in values.values())
