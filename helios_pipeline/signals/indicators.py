"""Technical indicators over whole series, defined as TA-Lib defines them.

Every function takes pandas Series (same index, ascending unique timestamps when it is a
``DatetimeIndex``) or 1-D numpy arrays and returns the same kind, row for row. Rows before an
indicator has enough history (its warm-up) are NaN, exactly where TA-Lib's are:

========================  ==========================  ===========================================
indicator                 first value at row          definition
========================  ==========================  ===========================================
``sma(x, n)``             ``n - 1``                   mean of the last ``n`` values
``ema(x, n)``             ``n - 1``                   ``k = 2/(n+1)``, seeded with the SMA of the
                                                      first ``n`` values
``rsi(close, n)``         ``n``                       Wilder-smoothed gains / (gains + losses);
                                                      0 when the price did not move at all
``macd(close, f, s, g)``  ``s - 1 + g - 1``           EMA(f) - EMA(s), both started at row
                                                      ``s - 1`` (EMA(f) seeded with the mean of the
                                                      ``f`` closes ending there, as TA-Lib does);
                                                      signal = EMA(g) of that line; histogram =
                                                      line - signal
``bollinger(close, n, k)`` ``n - 1``                  SMA(n) +- k * population std of the window
``atr(h, l, c, n)``       ``n``                       Wilder mean of the true range (row 0 has no
                                                      previous close, so no true range)
``adx(h, l, c, n)``       ``2n - 1``                  Wilder's ADX: smoothed +DM/-DM/TR sums, DX,
                                                      then the Wilder mean of DX
========================  ==========================  ===========================================

Rows are taken as consecutive candles: a gap in time is not filled or interpolated. What that
means per indicator is in ``docs/signals.md``.
"""

from __future__ import annotations

import numpy as np

from helios_pipeline.signals.inputs import FloatArray, PriceInput, check_period, prepare
from helios_pipeline.signals.kernels import (
    adx_kernel,
    atr_kernel,
    bollinger_kernel,
    macd_kernel,
    rsi_kernel,
)
from helios_pipeline.signals.smoothing import ema_from, rolling_mean_var


def sma(close: PriceInput, period: int = 20) -> PriceInput:
    """Simple moving average of the last ``period`` values."""
    period = check_period(period, "period")
    data = prepare([("close", close)], period, "period")
    mean, _ = rolling_mean_var(data.arrays[0], period)
    return data.wrap(mean, f"sma_{period}")


def ema(close: PriceInput, period: int = 20) -> PriceInput:
    """Exponential moving average, ``k = 2 / (period + 1)``, seeded with the first SMA."""
    period = check_period(period, "period")
    data = prepare([("close", close)], period, "period")
    return data.wrap(ema_from(data.arrays[0], period - 1, period), f"ema_{period}")


def rsi(close: PriceInput, period: int = 14) -> PriceInput:
    """Relative strength index (Wilder), 0..100."""
    period = check_period(period, "period")
    data = prepare([("close", close)], period, "period")
    return data.wrap(rsi_values(data.arrays[0], period), f"rsi_{period}")


def rsi_values(values: FloatArray, period: int) -> FloatArray:
    """RSI of checked float values (see :func:`rsi`)."""
    return rsi_kernel(values, period)


def macd(close: PriceInput, fast: int = 12, slow: int = 26,
         signal: int = 9) -> tuple[PriceInput, PriceInput, PriceInput]:
    """MACD line, signal line and histogram.

    Raises:
        ValueError: A non-positive period, or ``fast`` not shorter than ``slow``.
    """
    fast, slow = check_period(fast, "fast"), check_period(slow, "slow")
    signal = check_period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast={fast}, slow={slow}: the fast EMA must be shorter than the slow.")
    data = prepare([("close", close)], slow, "slow")
    line, line_signal, histogram = macd_values(data.arrays[0], fast, slow, signal)
    return (data.wrap(line, "macd"), data.wrap(line_signal, "macd_signal"),
            data.wrap(histogram, "macd_hist"))


def macd_values(values: FloatArray, fast: int, slow: int,
                signal: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD of checked float values (see :func:`macd`)."""
    return macd_kernel(values, fast, slow, signal)


def bollinger(close: PriceInput, period: int = 20,
              k: float = 2.0) -> tuple[PriceInput, PriceInput, PriceInput]:
    """Bollinger bands: ``(upper, middle, lower)`` = SMA +- ``k`` population standard deviations.

    Raises:
        ValueError: A non-positive ``period`` or a negative or non-finite ``k``.
    """
    period = check_period(period, "period")
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k={k!r}: must be a finite, non-negative number of deviations.")
    data = prepare([("close", close)], period, "period")
    upper, middle, lower = bollinger_kernel(data.arrays[0], period, float(k))
    return (data.wrap(upper, "bb_upper"), data.wrap(middle, "bb_middle"),
            data.wrap(lower, "bb_lower"))


def atr(high: PriceInput, low: PriceInput, close: PriceInput, period: int = 14) -> PriceInput:
    """Average true range (Wilder)."""
    period = check_period(period, "period")
    data = prepare([("high", high), ("low", low), ("close", close)], period, "period")
    high_, low_, close_ = data.arrays
    return data.wrap(atr_values(high_, low_, close_, period), f"atr_{period}")


def atr_values(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """ATR of checked float values (see :func:`atr`)."""
    return atr_kernel(high, low, close, period)


def adx(high: PriceInput, low: PriceInput, close: PriceInput, period: int = 14) -> PriceInput:
    """Average directional index (Wilder), 0..100: trend strength, whatever its direction."""
    period = check_period(period, "period")
    data = prepare([("high", high), ("low", low), ("close", close)], period, "period")
    high_, low_, close_ = data.arrays
    return data.wrap(adx_values(high_, low_, close_, period), f"adx_{period}")


def adx_values(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """ADX of checked float values (see :func:`adx`)."""
    return adx_kernel(high, low, close, period)
