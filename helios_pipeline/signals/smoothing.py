"""Compiled building blocks of the indicators: the EMA, rolling moments and the true range.

Each is a plain loop over float64 arrays compiled to machine code by numba
(``@numba.njit(cache=True)``, see :func:`compiled`): a recursive smoother is one multiply-add
per row, which no vectorised numpy form can do without a Python loop or a general filter pass.
The first call in a fresh checkout compiles the kernels and writes them to ``__pycache__``;
later processes load the cached machine code (the cost is in ``docs/signals.md``).

Rolling moments keep the sums of deviations from an anchor (a price of the window, with the
sums recomputed from scratch every ``period`` rows), so a long series of large prices never loses
precision to one huge running total. A window whose variance is too small to be told apart from
that method's rounding (a flat or nearly flat market) is recomputed exactly, two-pass; a flat
window has a standard deviation of exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import numba
import numpy as np

from helios_pipeline.signals.inputs import FloatArray

F = TypeVar("F", bound=Callable[..., object])

# The running sums' rounding is about 4 * period * 1e-16 of the largest mean square they held
# since they were last recomputed; a variance below this share of that is recomputed exactly
# (relative error of the variance then under 1e-11).
EXACT_BELOW = 1e-3


def compiled(function: F) -> F:
    """``function`` compiled by ``numba.njit(cache=True)``: machine code, cached on disk."""
    return cast(F, numba.njit(cache=True)(function))


def new_rows(like: FloatArray) -> FloatArray:
    """A new, unfilled float64 array as long as ``like``, for a kernel to fill.

    Allocated by numpy, not inside the kernel: numpy asks the kernel for huge pages on big arrays,
    so a million-row output costs a few page faults instead of thousands (measured: allocating
    two 1M-row outputs inside numba took 20 ms, by numpy 1 ms).
    """
    return np.empty(like.size, dtype=np.float64)


@compiled
def fill_nan(out: FloatArray, stop: int) -> None:
    """Set the rows of ``out`` before ``stop`` (the warm-up) to NaN."""
    for row in range(min(stop, out.size)):
        out[row] = np.nan


@compiled
def mean_of(values: FloatArray, start: int, stop: int) -> float:
    """Mean of ``values[start:stop]``, summed in order."""
    total = 0.0
    for row in range(start, stop):
        total += values[row]
    return total / (stop - start)


def ema_from(values: FloatArray, seed_at: int, period: int) -> FloatArray:
    """EMA of ``values`` (``k = 2 / (period + 1)``) seeded at row ``seed_at``.

    The seed is the mean of the ``period`` values ending at ``seed_at`` (TA-Lib's default); rows
    before ``seed_at`` are NaN.
    """
    out = new_rows(values)
    _ema_into(values, seed_at, period, out)
    return out


@compiled
def _ema_into(values: FloatArray, seed_at: int, period: int, out: FloatArray) -> None:
    fill_nan(out, seed_at)
    if seed_at >= values.size:
        return
    k = 2.0 / (period + 1)
    decay = 1.0 - k
    value = mean_of(values, seed_at - period + 1, seed_at + 1)
    out[seed_at] = value
    for row in range(seed_at + 1, values.size):
        value = decay * value + k * values[row]
        out[row] = value


@compiled
def true_range_at(high: FloatArray, low: FloatArray, close: FloatArray, row: int) -> float:
    """TA-Lib's true range of row ``row`` (``row >= 1``) against the previous close."""
    previous = close[row - 1]
    return float(max(high[row], previous) - min(low[row], previous))


@compiled
def exact_mean_var(values: FloatArray, start: int, stop: int) -> tuple[float, float]:
    """Two-pass mean and population variance of ``values[start:stop]``; 0 if all are equal."""
    lowest = highest = values[start]
    for row in range(start + 1, stop):
        lowest = min(lowest, values[row])
        highest = max(highest, values[row])
    if lowest == highest:
        return lowest, 0.0
    centre = mean_of(values, start, stop)
    squares = 0.0
    for row in range(start, stop):
        spread = values[row] - centre
        squares += spread * spread
    return centre, squares / (stop - start)


def rolling_mean_var(values: FloatArray, period: int) -> tuple[FloatArray, FloatArray]:
    """Mean and population variance of each window of ``period`` rows ending at each row.

    Rows before ``period - 1`` are NaN.
    """
    mean, var = new_rows(values), new_rows(values)
    _rolling_into(values, period, mean, var)
    return mean, var


@compiled
def _rolling_into(values: FloatArray, period: int, mean: FloatArray, var: FloatArray) -> None:
    fill_nan(mean, period - 1)
    fill_nan(var, period - 1)
    anchor = total = squares = peak = 0.0
    since = period  # windows since the sums were last recomputed from scratch
    share = 1.0 / period
    for end in range(period - 1, values.size):
        start = end - period + 1
        if since == period:
            anchor = values[end]
            total, squares = _deviation_sums(values, start, end + 1, anchor)
            since, peak = 0, squares
        else:
            old, new = values[start - 1] - anchor, values[end] - anchor
            total += new - old
            squares += new * new - old * old
            peak = max(peak, squares)
        since += 1
        shift = total * share
        variance = squares * share - shift * shift
        # The sums' rounding is relative to the largest they held since they were recomputed.
        if variance <= EXACT_BELOW * peak * share:
            mean[end], var[end] = exact_mean_var(values, start, end + 1)
        else:
            mean[end], var[end] = anchor + shift, variance


@compiled
def _deviation_sums(values: FloatArray, start: int, stop: int,
                    anchor: float) -> tuple[float, float]:
    """Sum and sum of squares of ``values[start:stop] - anchor``."""
    total = squares = 0.0
    for row in range(start, stop):
        deviation = values[row] - anchor
        total += deviation
        squares += deviation * deviation
    return total, squares
