"""Volume profile: how much volume traded at each price over a window of candles.

Method. Inside a candle the platform does not know where each unit traded, only the range it
traded in, so each candle's volume is spread **uniformly over its low..high range** (a candle with
``high == low`` puts all of it at that price). Bin ``[a, b)`` gets, from every candle, its volume
times the share of its range that falls inside the bin. This is exact for that assumption and
computed without a candles x bins matrix: the cumulative volume below a price ``x`` is
``x * (Σ density of ranges opened below x - Σ density closed below x) - (Σ density*low - Σ
density*high)`` over the same sets. Most ranges lie inside one bin and simply add their volume
to it; only those across an edge need the sums. Bucketing each low (and, for ranges across an
edge, each high) by the first bin edge above it (by arithmetic, the edges being equally spaced,
checked against the edges themselves as ``numpy.histogram`` does) gives them at every edge in
one compiled pass (numba) over the candles: ``O(n + bins)``, with no candles x bins matrix and
no sort.

* point of control (POC): the middle of the bin with the most volume (the lowest such bin on a tie);
* value area: grown from the POC bin, one bin at a time towards the side whose next bin holds more
  volume (the upper on a tie), until it holds at least 70% of the volume.

Prices are floats here: a profile is a statistic over many candles, not a stored value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helios_pipeline.signals.inputs import FloatArray
from helios_pipeline.signals.smoothing import compiled

VALUE_AREA_SHARE = 0.70


@dataclass(frozen=True)
class VolumeProfile:
    """Volume per price bin and the levels read from it.

    Attributes:
        bins: One row per bin: ``price_low``, ``price_high``, ``volume`` (ascending prices).
        poc: Point of control, the middle of the bin with the most volume.
        value_area_low: Lower edge of the value area.
        value_area_high: Upper edge of the value area.
        total_volume: Volume of every candle in the window.
        candles: Candles the profile was built from.
    """

    bins: pd.DataFrame
    poc: float
    value_area_low: float
    value_area_high: float
    total_volume: float
    candles: int


def bin_edges(low: float, high: float, bins: int | None, bin_size: float | None) -> FloatArray:
    """Edges covering ``low..high``.

    Either ``bins`` equal bins, or bins of ``bin_size`` aligned to its multiples (so profiles of
    different windows share edges).

    Raises:
        ValueError: Neither or both of ``bins`` and ``bin_size`` given, or a non-positive one.
    """
    if (bins is None) == (bin_size is None):
        raise ValueError("Give either bins (a count) or bin_size (a price step), not both.")
    if bin_size is not None:
        if not bin_size > 0:
            raise ValueError(f"bin_size={bin_size}: must be a positive price step.")
        first = np.floor(low / bin_size) * bin_size
        count = max(1, int(np.ceil((high - first) / bin_size)))
        edges: FloatArray = first + bin_size * np.arange(count + 1, dtype=np.float64)
        return edges
    if bins is None or bins <= 0:
        raise ValueError(f"bins={bins}: must be a positive number of bins.")
    if high == low:
        return np.array([low, low + 1e-9 * max(1.0, abs(low))])
    return np.asarray(np.linspace(low, high, bins + 1), dtype=np.float64)


def spread_volume(low: FloatArray, high: FloatArray, volume: FloatArray,
                  edges: FloatArray) -> FloatArray:
    """Volume per bin with each candle's volume uniform over its low..high range.

    ``edges`` are equally spaced and ascending (as :func:`bin_edges` makes them).

    Raises:
        BadCandleError: A candle without finite prices, with ``high < low`` or a negative or
            missing volume (nothing is spread then).
    """
    low, high, volume = (np.ascontiguousarray(a, dtype=np.float64) for a in (low, high, volume))
    bad = _first_unspreadable(low, high, volume)
    if bad >= 0:
        raise BadCandleError(bad, f"low={low[bad]}, high={high[bad]}, volume={volume[bad]}")
    volumes = np.zeros(edges.size - 1)
    _spread(low, high, volume, edges, volumes)
    return volumes


class BadCandleError(ValueError):
    """A candle a volume profile cannot spread; ``row`` is its position in the input."""

    def __init__(self, row: int, values: str, where: str | None = None) -> None:
        super().__init__(f"{where or f'candle {row}'} ({values}): a volume profile needs finite "
                         "prices with low <= high and a volume >= 0; repair or drop that candle.")
        self.row, self.values = row, values


@compiled
def _spread(low: FloatArray, high: FloatArray, volume: FloatArray, edges: FloatArray,
            volumes: FloatArray) -> None:
    """Add each candle's volume to ``volumes`` (one pass; the method is the module's).

    Every candle must be spreadable (:func:`_first_unspreadable` returned -1).
    """
    padded = np.empty(edges.size + 2)  # edges between -inf and +inf: padded[i] == edges[i - 1]
    padded[0], padded[-1] = -np.inf, np.inf
    padded[1:-1] = edges
    step = (edges[-1] - edges[0]) / (edges.size - 1)
    last_bin = volumes.size - 1
    # Ranges across edges: a range counts at edge j once it opened below it (low < edges[j]) and
    # stops growing there once it closed below it (high < edges[j]).
    opened_density, closed_density = np.zeros(edges.size + 1), np.zeros(edges.size + 1)
    opened_moment, closed_moment = np.zeros(edges.size + 1), np.zeros(edges.size + 1)
    for i in range(low.size):
        opened = first_edge_above(low[i], edges[0], step, padded)
        if high[i] < padded[opened + 1]:
            # inside one bin (or flat: high == low), usually most candles: all of it there (the
            # last bin holds its upper edge, as in numpy.histogram)
            volumes[min(opened - 1, last_bin)] += volume[i]
            continue
        closed = first_edge_above(high[i], edges[0], step, padded)
        density = volume[i] / (high[i] - low[i])
        opened_density[opened] += density
        closed_density[closed] += density
        opened_moment[opened] += density * low[i]
        closed_moment[closed] += density * high[i]
    below = (edges * np.cumsum(opened_density - closed_density)[:-1]
             - np.cumsum(opened_moment - closed_moment)[:-1])
    volumes += np.diff(below)


@compiled
def _first_unspreadable(low: FloatArray, high: FloatArray, volume: FloatArray) -> int:
    """Position of the first candle a profile cannot spread, or -1.

    Spreadable: finite prices with ``low <= high`` and a finite volume >= 0.
    """
    every = True
    for i in range(low.size):  # no early exit: the loop vectorises (the usual case: all fine)
        every &= (np.isfinite(low[i]) & np.isfinite(high[i]) & (low[i] <= high[i])
                  & np.isfinite(volume[i]) & (volume[i] >= 0.0))
    if every:
        return -1
    for i in range(low.size):
        if not (np.isfinite(low[i]) and np.isfinite(high[i]) and low[i] <= high[i]
                and np.isfinite(volume[i]) and volume[i] >= 0.0):
            return i
    return -1


@compiled
def first_edge_above(value: float, first: float, step: float, padded: FloatArray) -> int:
    """``numpy.searchsorted(edges, value, side="right")`` for equally spaced edges.

    The bucket is computed, then moved by one where float rounding put it past an edge (the
    estimate is never further off), so the answer is the binary search's. ``padded`` is the
    edges between -inf and +inf, ``first`` the first edge and ``step`` their spacing.
    """
    index = min(max(int((value - first) / step) + 1, 0), padded.size - 2)
    if value < padded[index]:
        index -= 1
    if value >= padded[index + 1]:
        index += 1
    return index


def value_area(volumes: FloatArray, share: float = VALUE_AREA_SHARE) -> tuple[int, int, int]:
    """``(poc bin, first bin, last bin)`` of the value area."""
    poc = int(np.argmax(volumes))
    lo = hi = poc
    target, held = share * float(volumes.sum()), float(volumes[poc])
    while held < target and (lo > 0 or hi < volumes.size - 1):
        up = float(volumes[hi + 1]) if hi < volumes.size - 1 else -1.0
        down = float(volumes[lo - 1]) if lo > 0 else -1.0
        if up >= down:
            hi += 1
            held += up
        else:
            lo -= 1
            held += down
    return poc, lo, hi


def volume_profile(frame: pd.DataFrame, bins: int | None = 50,
                   bin_size: float | None = None) -> VolumeProfile:
    """The profile of candles with float ``low``, ``high`` and ``volume`` columns.

    Raises:
        ValueError: No candles, or bad ``bins`` / ``bin_size`` (see :func:`bin_edges`), or a
            candle that cannot be spread (:class:`BadCandleError`, naming it).
    """
    if frame.empty:
        raise ValueError("No candles in the window: a volume profile needs at least one.")
    low = frame["low"].to_numpy(dtype=np.float64)
    high = frame["high"].to_numpy(dtype=np.float64)
    volume = frame["volume"].to_numpy(dtype=np.float64)
    bad = _first_unspreadable(low, high, volume)
    if bad >= 0:
        raise BadCandleError(bad, f"low={low[bad]}, high={high[bad]}, volume={volume[bad]}",
                             f"the candle at {frame.index[bad]}")
    edges = bin_edges(float(low.min()), float(high.max()), None if bin_size else bins, bin_size)
    volumes = np.zeros(edges.size - 1)
    _spread(low, high, volume, edges, volumes)
    poc, lo, hi = value_area(volumes)
    table = pd.DataFrame({"price_low": edges[:-1], "price_high": edges[1:], "volume": volumes})
    return VolumeProfile(
        bins=table, poc=float((edges[poc] + edges[poc + 1]) / 2),
        value_area_low=float(edges[lo]), value_area_high=float(edges[hi + 1]),
        total_volume=float(volume.sum()), candles=len(frame),
    )
