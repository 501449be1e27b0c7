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

from helios_pipeline.signals.inputs import BoolArray, FloatArray, PriceInput, check_period, prepare
from helios_pipeline.signals.smoothing import (
    ema_from,
    recursive,
    rolling_mean_var,
    true_range,
    wilder_mean,
)


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
    out = np.full(values.size, np.nan)
    if values.size <= period:
        return out
    change = np.diff(values)
    gains = wilder_mean(np.maximum(change, 0.0), period, 0)
    losses = wilder_mean(np.maximum(-change, 0.0), period, 0)
    total = gains + losses
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.where(total > 0.0, 100.0 * (gains / total), 0.0)
    out[: period] = np.nan
    return out


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
    start = slow - 1
    line = ema_from(values, start, slow)
    line = ema_from(values, start, fast) - line
    first = start + signal - 1
    line_signal = np.full(values.size, np.nan)
    if first < values.size:
        line_signal[start:] = ema_from(line[start:], signal - 1, signal)
    line[:first] = np.nan
    return line, line_signal, line - line_signal


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
    middle, var = rolling_mean_var(data.arrays[0], period)
    width = k * np.sqrt(var)
    return (data.wrap(middle + width, "bb_upper"), data.wrap(middle, "bb_middle"),
            data.wrap(middle - width, "bb_lower"))


def atr(high: PriceInput, low: PriceInput, close: PriceInput, period: int = 14) -> PriceInput:
    """Average true range (Wilder)."""
    period = check_period(period, "period")
    data = prepare([("high", high), ("low", low), ("close", close)], period, "period")
    high_, low_, close_ = data.arrays
    return data.wrap(atr_values(high_, low_, close_, period), f"atr_{period}")


def atr_values(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """ATR of checked float values (see :func:`atr`)."""
    ranges = true_range(high, low, close)
    out = np.full(high.size, np.nan)
    out[1:] = wilder_mean(ranges[1:], period, 0)
    return out


def adx(high: PriceInput, low: PriceInput, close: PriceInput, period: int = 14) -> PriceInput:
    """Average directional index (Wilder), 0..100: trend strength, whatever its direction."""
    period = check_period(period, "period")
    data = prepare([("high", high), ("low", low), ("close", close)], period, "period")
    high_, low_, close_ = data.arrays
    return data.wrap(adx_values(high_, low_, close_, period), f"adx_{period}")


def directional_movement(high: FloatArray, low: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(+DM, -DM)`` per row, TA-Lib's rule (row 0 is 0): only the larger move counts."""
    up = np.zeros(high.size)
    down = np.zeros(high.size)
    diff_plus = high[1:] - high[:-1]
    diff_minus = low[:-1] - low[1:]
    minus = (diff_minus > 0) & (diff_plus < diff_minus)
    plus = ~minus & (diff_plus > 0) & (diff_plus > diff_minus)
    up[1:] = np.where(plus, diff_plus, 0.0)
    down[1:] = np.where(minus, diff_minus, 0.0)
    return up, down


def adx_values(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """ADX of checked float values (see :func:`adx`)."""
    out = np.full(high.size, np.nan)
    first = 2 * period - 1
    if high.size <= first:
        return out
    dx, valid = _dx(high, low, close, period)
    seed = float(np.where(valid[period: first + 1], dx[period: first + 1], 0.0).sum()) / period
    out[first] = seed
    # A bar whose DX is undefined (no range at all) leaves the ADX where it was, as in TA-Lib.
    rows = np.flatnonzero(valid[first + 1:]) + first + 1
    smoothed = recursive(dx[rows], (period - 1) / period, 1.0 / period, seed)
    held = np.full(high.size - first - 1, -1)
    held[rows - first - 1] = np.arange(rows.size)
    held = np.maximum.accumulate(held)
    out[first + 1:] = np.where(held >= 0, smoothed[np.maximum(held, 0)] if rows.size else seed,
                               seed)
    return out


def _dx(high: FloatArray, low: FloatArray, close: FloatArray,
        period: int) -> tuple[FloatArray, BoolArray]:
    """DX per row from ``period`` on, and where it is defined."""
    up, down = directional_movement(high, low)
    ranges = true_range(high, low, close)
    ranges[0] = 0.0
    sums = np.vstack([up, down, ranges])
    decay = (period - 1) / period
    seed = sums[:, 1:period].sum(axis=1)
    smoothed = np.full(sums.shape, np.nan)
    for row in range(3):
        smoothed[row, period:] = recursive(sums[row, period:], decay, 1.0, seed[row])
    plus, minus, total = smoothed
    with np.errstate(invalid="ignore", divide="ignore"):
        plus_di = 100.0 * (plus / total)
        minus_di = 100.0 * (minus / total)
        di_sum = plus_di + minus_di
        dx = 100.0 * (np.abs(minus_di - plus_di) / di_sum)
    valid = (total > 0) & (di_sum > 0)
    return np.where(valid, dx, 0.0), valid
