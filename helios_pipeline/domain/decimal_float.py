"""Exact decimals to the nearest float64, fast: Clinger's fast path in one compiled pass.

A decimal ``m / 10**k`` whose integer ``m`` and power ``10**k`` are both exact doubles
(``|m| <= 2**53``, ``k <= 22``) converts with one IEEE division, which rounds correctly: the
result is the double nearest the decimal, exactly what ``float(str(d))`` gives. Arrow's own
``decimal128 -> float64`` cast divides a rounded 128-bit integer and may be an ulp off, so it is
not used (and at about 30 ms per million-row column it is also slow).

Each value is tried at a few scales (8 holds most prices and sizes, then 12, then 18): at scale
``k`` its integer is the stored 128-bit integer divided by ``10**(scale - k)``, if that division
is exact. One compiled loop (numba, :func:`_fast_path`) guesses that quotient in floating point
and keeps it only if multiplying it back gives the stored integer exactly, so a guess can only
fail over to the next scale, never give a wrong value. Values no scale holds exactly (rare: over
15 significant digits) go through the exact decimal-text route.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SCALES = (8, 12, 18)  # tried in this order; 8 holds |values| up to ~90 million
_MAX_POWER = 19  # the largest power of ten a uint64 holds
_MAX_EXACT_POWER = 22  # the largest power of ten a double holds exactly

_EXACT_INT = np.uint64(2**53)
_LOW_32 = np.uint64(0xFFFF_FFFF)
_32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_POWERS = np.array([10**e for e in range(_MAX_POWER + 1)], dtype=np.uint64)
_INVERSE_POWERS = 1.0 / _POWERS.astype(np.float64)  # guesses only: need not be exact
_FLOAT_POWERS = np.array([10.0**e for e in range(_MAX_EXACT_POWER + 1)])  # each exact


def decimal_to_float(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each decimal as the nearest float64 (nulls stay null)."""
    if not pa.types.is_decimal128(array.type) or len(array) == 0:
        return _via_text(_combined(array))
    scale = array.type.scale
    scales = [k for k in _SCALES if k <= scale and scale - k <= _MAX_POWER]
    if 0 <= scale <= _MAX_EXACT_POWER and scale not in scales:
        scales.append(scale)
    if not scales:  # a negative or very long scale: no exact fast path
        return _via_text(_combined(array))
    floats = np.empty(len(array), dtype=np.float64)
    done = np.empty(len(array), dtype=np.bool_)
    missed, start = 0, 0
    # chunk by chunk: combining a year's monthly chunks first would copy 8 MB per column
    for chunk in array.chunks if isinstance(array, pa.ChunkedArray) else [array]:
        if not len(chunk):
            continue
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
        words = words[2 * chunk.offset: 2 * (chunk.offset + len(chunk))].reshape(-1, 2)
        stop = start + len(chunk)
        missed += _fast_path(words[:, 0].view(np.uint64), words[:, 1], scale,
                             np.array(scales, dtype=np.int64), floats[start:stop],
                             done[start:stop])
        start = stop
    nulls = None if array.null_count == 0 else array.is_null().to_numpy(zero_copy_only=False)
    if missed:
        slow = np.flatnonzero(~done if nulls is None else ~done & ~nulls)
        if slow.size:
            exact = _via_text(_combined(array.take(pa.array(slow))))
            floats[slow] = exact.to_numpy(zero_copy_only=False)
    return pa.array(floats, type=pa.float64(), mask=nulls)


@numba.njit(cache=True, nogil=True)  # nogil: columns may convert in parallel threads
def _fast_path(low: np.ndarray, high: np.ndarray, scale: int, scales: np.ndarray,
               out: np.ndarray, done: np.ndarray) -> int:
    """Fill ``out[i]`` and set ``done[i]`` for every value some scale of ``scales`` holds.

    ``low``/``high`` are the two 64-bit words of each 128-bit integer (two's complement).
    Returns how many values no scale holds (``done[i]`` false: left for the text route).
    """
    missed = 0
    for i in range(low.size):
        done[i] = False
        lo, hi = low[i], np.uint64(high[i])
        negative = high[i] < 0
        if negative:  # magnitude: two's complement negation of the 128-bit integer
            lo = ~lo + _ONE
            hi = ~hi + (_ONE if lo == _ZERO else _ZERO)
        # the magnitude as a double, close enough to guess a quotient (the check is exact);
        # int64 conversions are one instruction each, uint64 ones are not
        approx = float(np.int64(hi)) * 18446744073709551616.0 + float(np.int64(lo >> _ONE)) * 2.0
        for j in range(scales.size):  # (indexing: iterating the array itself is 3x slower)
            k = scales[j]
            guess = approx * _INVERSE_POWERS[scale - k]
            if not guess < 9007199254740992.0:  # 2**53 or over (or -2**127): not an exact double
                continue
            quotient = np.uint64(np.int64(guess + 0.5))
            product_hi, product_lo = _multiply(quotient, _POWERS[scale - k])
            if product_hi == hi and product_lo == lo:  # the division was exact
                value = float(np.int64(quotient)) / _FLOAT_POWERS[k]
                out[i] = -value if negative else value
                done[i] = True
                break
        if not done[i]:
            missed += 1
    return missed


@numba.njit(cache=True, nogil=True)
def _multiply(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The 128-bit product of two uint64 as (high word, low word), from 32-bit halves."""
    a0, a1 = a & _LOW_32, a >> _32
    b0, b1 = b & _LOW_32, b >> _32
    low_low, low_high, high_low = a0 * b0, a0 * b1, a1 * b0
    middle = (low_low >> _32) + (low_high & _LOW_32) + (high_low & _LOW_32)
    low = (low_low & _LOW_32) | (middle << _32)
    high = a1 * b1 + (low_high >> _32) + (high_low >> _32) + (middle >> _32)
    return high, low


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return array


def _via_text(array: pa.Array) -> pa.Array:
    """The exact route: decimal text, then a correctly rounded parse."""
    return pc.cast(pc.cast(array, pa.string()), pa.float64())
