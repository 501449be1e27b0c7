"""Compiled loops of the indicators: RSI, MACD, Bollinger bands, ATR and ADX.

Each is one pass over float64 arrays, compiled by numba (see
:func:`helios_pipeline.signals.smoothing.compiled`), following TA-Lib's definitions step by step:
the same seeds, the same recursions and NaN in the same warm-up rows. The incremental forms in
:mod:`helios_pipeline.signals.incremental` and :mod:`helios_pipeline.signals.directional` run the
same steps one candle at a time.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pyarrow as pa

from helios_pipeline.domain.decimal_float import decimal_to_float
from helios_pipeline.signals.inputs import FloatArray
from helios_pipeline.signals.profile import bin_edges, spread_volume
from helios_pipeline.signals.smoothing import (
    compiled,
    ema_from,
    fill_nan,
    mean_of,
    new_rows,
    rolling_mean_var,
    true_range_at,
)


def rsi_kernel(values: FloatArray, period: int) -> FloatArray:
    """Wilder's RSI: smoothed gains / (gains + losses) x 100, 0 while nothing moved."""
    out = new_rows(values)
    _rsi_into(values, period, out)
    return out


@compiled
def _rsi_into(values: FloatArray, period: int, out: FloatArray) -> None:
    fill_nan(out, period)
    if values.size <= period:
        return
    gain = loss = 0.0
    for row in range(1, period + 1):
        change = values[row] - values[row - 1]
        gain += max(change, 0.0)
        loss += max(-change, 0.0)
    gain, loss = gain / period, loss / period
    out[period] = _share(gain, loss)
    decay, weight = (period - 1) / period, 1.0 / period
    for row in range(period + 1, values.size):
        change = values[row] - values[row - 1]
        gain = decay * gain + weight * max(change, 0.0)
        loss = decay * loss + weight * max(-change, 0.0)
        out[row] = _share(gain, loss)


@compiled
def _share(gain: float, loss: float) -> float:
    total = gain + loss
    return 100.0 * (gain / total) if total > 0.0 else 0.0


def atr_kernel(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Wilder's mean of the true range: first value at row ``period``."""
    out = new_rows(high)
    _atr_into(high, low, close, period, out)
    return out


@compiled
def _atr_into(high: FloatArray, low: FloatArray, close: FloatArray, period: int,
              out: FloatArray) -> None:
    fill_nan(out, period)
    if high.size <= period:
        return
    value = 0.0
    for row in range(1, period + 1):
        value += true_range_at(high, low, close, row)
    value /= period
    out[period] = value
    decay, weight = (period - 1) / period, 1.0 / period
    for row in range(period + 1, high.size):
        value = decay * value + weight * true_range_at(high, low, close, row)
        out[row] = value


def macd_kernel(values: FloatArray, fast: int, slow: int,
                signal: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal and histogram; both EMAs start at row ``slow - 1`` as in TA-Lib.

    The signal line is the EMA(``signal``) of the line, seeded with the mean of its first
    ``signal`` values; all three are NaN before that seed (row ``slow + signal - 2``).
    """
    line, line_signal, histogram = new_rows(values), new_rows(values), new_rows(values)
    _macd_into(values, fast, slow, signal, line, line_signal, histogram)
    return line, line_signal, histogram


@compiled
def _macd_into(values: FloatArray, fast: int, slow: int, signal: int, line: FloatArray,
               line_signal: FloatArray, histogram: FloatArray) -> None:
    first = slow + signal - 2
    for out in (line, line_signal, histogram):
        fill_nan(out, first)
    if first >= values.size:
        return
    k_fast, k_slow, k_signal = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    fast_value = mean_of(values, slow - fast, slow)
    slow_value = mean_of(values, 0, slow)
    seed = fast_value - slow_value
    for row in range(slow, first + 1):
        fast_value = (1.0 - k_fast) * fast_value + k_fast * values[row]
        slow_value = (1.0 - k_slow) * slow_value + k_slow * values[row]
        seed += fast_value - slow_value
    line[first], line_signal[first] = fast_value - slow_value, seed / signal
    histogram[first] = line[first] - line_signal[first]
    for row in range(first + 1, values.size):
        fast_value = (1.0 - k_fast) * fast_value + k_fast * values[row]
        slow_value = (1.0 - k_slow) * slow_value + k_slow * values[row]
        line[row] = fast_value - slow_value
        line_signal[row] = (1.0 - k_signal) * line_signal[row - 1] + k_signal * line[row]
        histogram[row] = line[row] - line_signal[row]


def bollinger_kernel(values: FloatArray, period: int,
                     k: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Upper band, middle (SMA) and lower band: mean +- ``k`` population standard deviations."""
    middle, var = rolling_mean_var(values, period)
    upper, lower = new_rows(values), new_rows(values)
    _bands_into(middle, var, k, upper, lower)
    return upper, middle, lower


@compiled
def _bands_into(middle: FloatArray, var: FloatArray, k: float, upper: FloatArray,
                lower: FloatArray) -> None:
    for row in range(middle.size):
        width = k * math.sqrt(var[row])
        upper[row] = middle[row] + width
        lower[row] = middle[row] - width


@compiled
def directional_movement_at(high: FloatArray, low: FloatArray, row: int) -> tuple[float, float]:
    """``(+DM, -DM)`` of row ``row`` (``row >= 1``), TA-Lib's rule: only the larger move counts."""
    diff_plus = high[row] - high[row - 1]
    diff_minus = low[row - 1] - low[row]
    if diff_minus > 0 and diff_plus < diff_minus:
        return 0.0, diff_minus
    if diff_plus > 0 and diff_plus > diff_minus:
        return diff_plus, 0.0
    return 0.0, 0.0


@compiled
def _dx(plus: float, minus: float, total: float) -> float:
    """DX from the smoothed +DM, -DM and TR sums; NaN where it is undefined (no range)."""
    if not total > 0:
        return math.nan
    plus_di, minus_di = 100.0 * (plus / total), 100.0 * (minus / total)
    di_sum = plus_di + minus_di
    if not di_sum > 0:
        return math.nan
    return 100.0 * (abs(minus_di - plus_di) / di_sum)


@compiled
def _dx_into(high: FloatArray, low: FloatArray, close: FloatArray, period: int,
             out: FloatArray) -> None:
    """DX per row from row ``period`` on (NaN before it and where undefined).

    +DM, -DM and the true range are summed over rows ``1 .. period - 1``, then Wilder-smoothed
    (``sum * (period - 1) / period + value``).
    """
    fill_nan(out, period)
    decay = (period - 1) / period
    plus_sum = minus_sum = range_sum = 0.0
    for row in range(1, high.size):
        plus, minus = directional_movement_at(high, low, row)
        true_range = true_range_at(high, low, close, row)
        if row < period:
            plus_sum, minus_sum = plus_sum + plus, minus_sum + minus
            range_sum += true_range
            continue
        plus_sum = decay * plus_sum + plus
        minus_sum = decay * minus_sum + minus
        range_sum = decay * range_sum + true_range
        out[row] = _dx(plus_sum, minus_sum, range_sum)


def adx_kernel(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Wilder's ADX: first value at row ``2 * period - 1``.

    The seed is the mean of the first ``period`` DX values (an undefined DX counts as 0); after
    it, a bar whose DX is undefined leaves the ADX where it was, as in TA-Lib.
    """
    dx, out = new_rows(high), new_rows(high)
    _dx_into(high, low, close, period, dx)
    _adx_into(dx, period, out)
    return out


@compiled
def _adx_into(dx: FloatArray, period: int, out: FloatArray) -> None:
    first = 2 * period - 1
    fill_nan(out, first)
    if dx.size <= first:
        return
    value = 0.0
    for row in range(period, first + 1):
        if not math.isnan(dx[row]):
            value += dx[row]
    value /= period
    out[first] = value
    decay, weight = (period - 1) / period, 1.0 / period
    for row in range(first + 1, dx.size):
        if not math.isnan(dx[row]):
            value = decay * value + weight * dx[row]
        out[row] = value


def precompile() -> None:
    """Compile (or load from the on-disk cache) every numba kernel, on a few made-up rows.

    The indicator kernels here, the volume profile's (``signals.profile``) and the exact
    decimal-to-float conversion's (``domain.decimal_float``).

    The first call in a fresh checkout compiles and caches the machine code (seconds; see
    ``docs/signals.md``); ``scripts/test`` runs it once before the tests, so that no test, and
    no subprocess a test starts, pays for the compilation inside its own timeout.
    """
    close = 100.0 + np.sin(np.arange(64.0))
    high, low = close + 1.0, close - 1.0
    rsi_kernel(close, 14)
    macd_kernel(close, 12, 26, 9)
    bollinger_kernel(close, 20, 2.0)
    atr_kernel(high, low, close, 14)
    adx_kernel(high, low, close, 14)
    ema_from(close, 19, 20)
    spread_volume(low, high, np.ones_like(close), bin_edges(low.min(), high.max(), 10, None))
    decimal_to_float(pa.array([Decimal("60000.12"), None], pa.decimal128(38, 18)))
