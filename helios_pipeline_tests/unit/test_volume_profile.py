"""The volume profile's fast spreading against the slow, obvious computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helios_pipeline.signals.profile import (
    BadCandleError,
    bin_edges,
    first_edge_above,
    spread_volume,
    volume_profile,
)


def brute_force_profile(frame: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Each candle's volume spread uniformly over its range, bin by bin (the slow way)."""
    volumes = np.zeros(len(edges) - 1)
    for low, high, volume in frame[["low", "high", "volume"]].itertuples(index=False):
        if high == low:
            volumes[min(np.searchsorted(edges, low, side="right") - 1, len(volumes) - 1)] += volume
            continue
        overlap = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None)
        volumes += volume * overlap / (high - low)
    return volumes


def candles(seed: int, n: int = 3_000) -> pd.DataFrame:
    """A random walk's candles with flat ones, one at the window's top and lows on round prices."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    high = close * (1 + rng.uniform(0, 0.003, n))
    low = close * (1 - rng.uniform(0, 0.003, n))
    flat = rng.random(n) < 0.05
    high[flat] = low[flat]
    low[::97] = np.round(low[::97])  # on a bin_size=1 edge
    high = np.maximum(high, low)
    top = int(np.argmax(high))
    low[top] = high[top]  # a flat candle at the top edge: the last bin holds it
    return pd.DataFrame({"low": low, "high": high, "volume": rng.gamma(2.0, 3.0, n)})


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("bins", "bin_size"), [(1, None), (7, None), (50, None), (2_000, None),
                                                (None, 1.0), (None, 0.05), (None, 0.3)])
def test_spreading_matches_the_candle_by_candle_computation(
        seed: int, bins: int | None, bin_size: float | None) -> None:
    frame = candles(seed)
    low, high, volume = (frame[c].to_numpy() for c in ("low", "high", "volume"))
    edges = bin_edges(float(low.min()), float(high.max()), bins, bin_size)
    fast = spread_volume(low, high, volume, edges)
    assert np.allclose(fast, brute_force_profile(frame, edges), rtol=1e-9,
                       atol=1e-12 * volume.sum())
    assert fast.sum() == pytest.approx(volume.sum(), rel=1e-9)


@pytest.mark.parametrize(("bins", "bin_size"),
                         [(50, None), (999, None), (None, 0.1), (None, 7.0)])
def test_bucketing_by_arithmetic_is_the_binary_search(bins: int | None,
                                                     bin_size: float | None) -> None:
    edges = bin_edges(95.3, 187.9, bins, bin_size)
    inner = edges[1:-1]
    values = np.concatenate([edges, np.nextafter(inner, -np.inf), np.nextafter(inner, np.inf),
                             np.random.default_rng(0).uniform(edges[0], edges[-1], 10_000)])
    padded = np.concatenate(([-np.inf], edges, [np.inf]))
    step = (edges[-1] - edges[0]) / (edges.size - 1)
    found = [first_edge_above(value, edges[0], step, padded) for value in values]
    assert (np.array(found) == np.searchsorted(edges, values, side="right")).all()


@pytest.mark.parametrize(("column", "value"), [("low", np.nan), ("high", np.inf),
                                               ("volume", -1.0), ("volume", np.nan),
                                               ("high", 50.0)])
def test_a_candle_that_cannot_be_spread_is_named(column: str, value: float) -> None:
    frame = candles(4, n=50)
    frame.index = pd.date_range("2024-01-01", periods=50, freq="1min", tz="UTC")
    frame.iloc[17, frame.columns.get_loc(column)] = value
    with pytest.raises(BadCandleError, match="the candle at 2024-01-01 00:17:00") as caught:
        volume_profile(frame, bins=10)
    assert caught.value.row == 17
