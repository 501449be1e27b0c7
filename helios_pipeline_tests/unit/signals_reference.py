"""Shared helpers of the indicator tests: the real Binance candles and the TA-Lib comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helios_pipeline_tests.conftest import KLINES_DIR

# The whole month around the 10 h outage, the first listing day (hundreds of flat zero-volume
# candles) and the COVID crash day: real gaps, flat stretches and violent ranges.
REAL_FILES = ("BTCUSDT-1m-2019-05.csv.xz", "BTCUSDT-1m-2017-08-17.csv",
              "BTCUSDT-1m-2020-03-12.csv")
RTOL = 1e-9


def real_candles(name: str) -> pd.DataFrame:
    """One of the real kline files as float columns on a UTC open-time index."""
    path: Path = KLINES_DIR / name
    # pandas reads .xz itself (by the file name).
    raw = pd.read_csv(path, header=None)
    stamps = raw[0].astype("int64")
    unit = "us" if stamps.iloc[0] > 10**14 else "ms"
    index = pd.DatetimeIndex(pd.to_datetime(stamps, unit=unit, utc=True), name="timestamp")
    frame = pd.DataFrame({"open": raw[1], "high": raw[2], "low": raw[3], "close": raw[4],
                          "volume": raw[5]}).astype("float64")
    frame.index = index
    return frame


def assert_matches(ours: object, reference: object, scale: float = 0.0) -> None:
    """NaN exactly where the reference has NaN; elsewhere equal to ``RTOL`` relative.

    ``scale`` is the magnitude the values are relative to when it is larger than the value
    itself: a MACD line is a difference of two price averages, so near its zero crossings its
    error is judged against the price, not against a value close to zero.
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), (
        f"warm-up differs: ours first value at {np.argmax(~np.isnan(a))}, "
        f"reference at {np.argmax(~np.isnan(b))}")
    filled = ~np.isnan(b)
    assert filled.any()
    tolerance = RTOL * np.maximum(np.abs(b[filled]), scale)
    error = np.abs(a[filled] - b[filled])
    worst = int(np.argmax(error - tolerance))
    assert (error <= tolerance).all(), (
        f"row {np.flatnonzero(filled)[worst]}: ours {a[filled][worst]!r}, "
        f"reference {b[filled][worst]!r}")
