"""Median and MAD of the values received before each row, over a fixed window, vectorised.

What the scalar validator's rolling windows hold at each row, computed for a whole column at
once: each row's window is a row of a sliding-window view (or, for the first rows, of a matrix
padded with -inf/+inf), and the median is an exact selection (``numpy.partition``), not an
interpolation, so it equals the scalar path's value bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from helios_pipeline.validation.frame_inputs import Bools, Floats, Ints

_CHUNK = 8192  # windows partitioned at once: bounds the memory of a 1M-row frame


def prior_medians(values: Floats, window: int, with_mad: bool) -> tuple[Ints, Floats, Floats]:
    """Per row: how many earlier values were numbers, their median and MAD over ``window``.

    The statistics of row ``i`` use the last ``window`` finite values received before it (fewer
    when fewer are known; the lower median for an even count); NaN when none is known.

    Returns:
        ``(count, median, mad)``; ``mad`` is all NaN unless ``with_mad``.
    """
    finite = np.isfinite(values)
    known = values[finite] + 0.0  # -0.0 -> 0.0, as the scalar windows store it
    count = np.cumsum(finite) - finite
    med_at, mad_at = _end_medians(known, window, with_mad)
    return count, med_at[count], mad_at[count]


def _end_medians(known: Floats, window: int, with_mad: bool) -> tuple[Floats, Floats]:
    """Median and MAD of ``known[max(0, j - window):j]`` for every ``j`` in ``0..len(known)``."""
    n = len(known)
    med = np.full(n + 1, np.nan)
    mad = np.full(n + 1, np.nan)
    mid = (window - 1) // 2
    part = min(window - 1, n)
    if part:
        matrix, real = _padded_prefixes(known[:part], window)
        _select(matrix, real, mid, with_mad, med[1:part + 1], mad[1:part + 1])
    if n >= window:
        windows = sliding_window_view(known, window)
        for start in range(0, n - window + 1, _CHUNK):
            block = windows[start:start + _CHUNK]
            stop = window + start + len(block)
            _select(block, None, mid, with_mad, med[window + start:stop], mad[window + start:stop])
    return med, mad


def _padded_prefixes(prefix: Floats, window: int) -> tuple[Floats, Bools]:
    """Each prefix ``prefix[:r + 1]`` as a row padded to ``window`` values with -inf and +inf.

    The pads are placed so that the middle selection of a padded row is the lower median of its
    real values. Also returns where the real values are.
    """
    part = len(prefix)
    counts = np.arange(1, part + 1)
    before = (window - 1) // 2 - (counts - 1) // 2
    source = np.arange(window)[None, :] - before[:, None]
    real = (source >= 0) & (source < counts[:, None])
    taken = prefix[np.clip(source, 0, part - 1)]
    matrix = np.where(real, taken, np.where(source < 0, -np.inf, np.inf))
    return matrix, real


def _select(
    block: Floats, real: Bools | None, mid: int, with_mad: bool, med_out: Floats, mad_out: Floats
) -> None:
    work = np.array(block, dtype=np.float64)  # a writable copy
    work.partition(mid, axis=1)
    med_out[:] = work[:, mid]
    if not with_mad:
        return
    np.subtract(block, med_out[:, None], out=work)
    np.abs(work, out=work)
    if real is not None:  # padding keeps its -inf/+inf so the selection index still works
        np.copyto(work, block, where=~real)
    work.partition(mid, axis=1)
    mad_out[:] = work[:, mid]
