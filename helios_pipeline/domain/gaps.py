"""Finding the candles that are missing from a series (pure; used by storage and quality)."""

from __future__ import annotations

from collections.abc import Iterable


def missing_ranges(
    open_times_ms: Iterable[int], start_ms: int, end_ms: int, step_ms: int
) -> list[tuple[int, int]]:
    """Ranges of expected candle open times in ``[start_ms, end_ms)`` that are absent.

    Args:
        open_times_ms: Open times present (any order; duplicates ignored).
        start_ms: First expected open time (aligned to ``step_ms``).
        end_ms: End of the window, exclusive.
        step_ms: Candle length.

    Returns:
        ``(first_missing_open_ms, last_missing_open_ms)`` pairs, both inclusive, in time order.
    """
    present = sorted({t for t in open_times_ms if start_ms <= t < end_ms})
    ranges: list[tuple[int, int]] = []
    expected = start_ms
    for t in [*present, end_ms]:
        if t > expected:
            ranges.append((expected, t - step_ms))
        expected = max(expected, t + step_ms)
    return ranges


def count_missing(ranges: Iterable[tuple[int, int]], step_ms: int) -> int:
    """Number of missing candles in ranges returned by :func:`missing_ranges`."""
    return sum((last - first) // step_ms + 1 for first, last in ranges)
