"""Vectorised building blocks of the indicators: rolling moments and recursive smoothers.

The recursive smoothers (EMA, Wilder's) are first-order linear filters, run by
``scipy.signal.lfilter`` in compiled code rather than a Python loop. Rolling sums use cumulative
sums over blocks of rows, each centred on its own first value, so that a long series of large
prices never loses precision to one huge running total. A window whose variance is too small to
be told apart from that method's rounding (a flat or nearly flat market) is recomputed exactly,
two-pass, so a flat window has a standard deviation of exactly 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

from helios_pipeline.signals.inputs import FloatArray

BLOCK = 1024  # output rows per block of the rolling sums
# Rounding of the block sums is about 1e-16 * BLOCK * (largest deviation in the block)**2; a
# variance below this share of that square is recomputed exactly (std error then under 1e-7).
EXACT_BELOW = 1e-6
EXACT_CHUNK = 65536  # windows recomputed per step, to bound memory


def recursive(values: FloatArray, decay: float, gain: float, start: float) -> FloatArray:
    """``y[i] = decay * y[i-1] + gain * values[i]`` with ``y[-1] = start``, for every row."""
    if values.size == 0:
        return np.empty(0, dtype=np.float64)
    result, _ = lfilter([gain], [1.0, -decay], values, zi=[decay * start])
    return np.asarray(result, dtype=np.float64)


def ema_from(values: FloatArray, seed_at: int, period: int) -> FloatArray:
    """EMA of ``values`` (``k = 2 / (period + 1)``) seeded at row ``seed_at``.

    The seed is the mean of the ``period`` values ending at ``seed_at`` (TA-Lib's default); rows
    before ``seed_at`` are NaN.
    """
    out = np.full(values.size, np.nan)
    if seed_at >= values.size:
        return out
    k = 2.0 / (period + 1)
    seed = float(values[seed_at - period + 1: seed_at + 1].mean())
    out[seed_at] = seed
    out[seed_at + 1:] = recursive(values[seed_at + 1:], 1.0 - k, k, seed)
    return out


def wilder_mean(values: FloatArray, period: int, first: int) -> FloatArray:
    """Wilder's moving average of ``values`` from row ``first``.

    The mean of ``values[first : first + period]``, then ``(prev * (period - 1) + value) /
    period``; NaN before row ``first + period - 1``.
    """
    out = np.full(values.size, np.nan)
    seed_at = first + period - 1
    if seed_at >= values.size:
        return out
    seed = float(values[first: seed_at + 1].mean())
    out[seed_at] = seed
    out[seed_at + 1:] = recursive(values[seed_at + 1:], (period - 1) / period, 1.0 / period, seed)
    return out


def rolling_mean_var(values: FloatArray, period: int) -> tuple[FloatArray, FloatArray]:
    """Mean and population variance of each window of ``period`` rows ending at each row.

    Rows before ``period - 1`` are NaN. Tiny negative variances from rounding become 0.
    """
    mean, var = np.full(values.size, np.nan), np.full(values.size, np.nan)
    count = values.size - period + 1
    if count <= 0:
        return mean, var
    blocks_n = -(-count // BLOCK)
    padded = np.empty(blocks_n * BLOCK + period - 1)
    padded[: values.size] = values
    padded[values.size:] = values[-1]
    blocks = sliding_window_view(padded, BLOCK + period - 1)[::BLOCK]
    reference = blocks[:, :1]
    deviation = blocks - reference
    sums = _window_sums(deviation, period)
    squares = _window_sums(deviation * deviation, period)
    block_mean = sums / period
    block_var = np.maximum(squares / period - block_mean * block_mean, 0.0)
    largest = np.abs(deviation).max(axis=1, keepdims=True)
    unsure = (block_var <= EXACT_BELOW * largest * largest).ravel()[:count]
    mean[period - 1:] = (block_mean + reference).ravel()[:count]
    var[period - 1:] = block_var.ravel()[:count]
    _exact(values, period, np.flatnonzero(unsure) + period - 1, mean, var)
    return mean, var


def _exact(values: FloatArray, period: int, ends: npt.NDArray[np.intp], mean: FloatArray,
           var: FloatArray) -> None:
    """Two-pass mean and variance of the windows ending at ``ends``, written in place."""
    offsets = np.arange(1 - period, 1)
    for start in range(0, ends.size, EXACT_CHUNK):
        chunk = ends[start: start + EXACT_CHUNK]
        windows = values[chunk[:, None] + offsets]
        centre = windows.mean(axis=1)
        spread = windows - centre[:, None]
        mean[chunk] = centre
        var[chunk] = (spread * spread).mean(axis=1)


def _window_sums(blocks: FloatArray, period: int) -> FloatArray:
    """Sum of each run of ``period`` columns in each row of ``blocks``."""
    totals = np.zeros((blocks.shape[0], blocks.shape[1] + 1))
    np.cumsum(blocks, axis=1, out=totals[:, 1:])
    return np.asarray(totals[:, period:] - totals[:, :-period], dtype=np.float64)


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """TA-Lib's true range per row; row 0 (no previous close) is NaN."""
    out = np.full(high.size, np.nan)
    previous = close[:-1]
    out[1:] = np.maximum(high[1:], previous) - np.minimum(low[1:], previous)
    return out
