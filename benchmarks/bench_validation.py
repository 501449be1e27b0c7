"""Validation speed: the realtime scalar validator per point, and frame validation rows/s.

1. Scalar: ``CandleValidator.validate`` on every candle of a real month (Binance BTC/USDT
   2025-01, 44,640 exact-Decimal candles), timed per point; p50 and p99 in microseconds (goal
   p99 < 20 us). Baseline: the stateless part alone (Decimal -> float, non-number, positivity,
   OHLC and volume checks), timed the same way, which is the floor any per-point validator pays.
2. Frames: ``validate_candle_frame`` (verdict columns with rule names and scores) against a
   hand-written vectorised numpy check of the same rules giving boolean hard/soft masks and the
   score, on the same float64 frames: 1,440-row days (goal >= 0.5x the baseline's rows/s) and a
   1,000,000-row frame (goal >= 0.8x). The fixed cost per frame is printed: the 1-row frame
   time, and the intercept implied by the two sizes.
"""

from __future__ import annotations

import lzma
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from benchmarks._common import best_of, report
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, ms_to_datetime
from helios_pipeline.validation.frames import validate_candle_frame
from helios_pipeline.validation.rules import ValidationThresholds
from helios_pipeline.validation.scalar import CandleValidator

DATA = Path(__file__).resolve().parents[1] / "helios_pipeline_tests" / "data" / "binance_btcusdt_1m"
NOW = 2_000_000_000_000
T = ValidationThresholds()
Floats = npt.NDArray[np.float64]


def real_month() -> list[list[str]]:
    with lzma.open(DATA / "BTCUSDT-1m-2025-01.csv.xz", "rt") as handle:
        return [line.strip().split(",") for line in handle]


def candles_of(rows: list[list[str]]) -> list[OHLCVData]:
    return [OHLCVData("BTC/USDT", ms_to_datetime(int(r[0]) // 1000), Timeframe.M1,
                      *(Decimal(x) for x in r[1:6]), trades=int(r[8]),
                      taker_buy_volume=Decimal(r[9])) for r in rows]


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def time_points(candles: list[OHLCVData], stateless: bool) -> tuple[float, float]:
    """Best p50 and p99 (us) over five passes over the month."""
    best = (float("inf"), float("inf"))
    clock = time.perf_counter_ns
    for _ in range(5):
        validator = CandleValidator("BTC/USDT", Timeframe.M1, T, NOW)
        check = stateless_check if stateless else validator.validate
        samples = []
        for candle in candles:
            start = clock()
            check(candle)
            samples.append(clock() - start)
        p50, p99 = percentiles(samples)
        best = (min(best[0], p50), min(best[1], p99))
    return best


def stateless_check(c: OHLCVData) -> bool:
    o, h, lo, cl, v = (float(x) for x in (c.open, c.high, c.low, c.close, c.volume))
    tb = float(c.taker_buy_volume) if c.taker_buy_volume is not None else float("nan")
    finite = all(x - x == 0 for x in (o, h, lo, cl, v))
    return finite and min(o, h, lo, cl) > 0 and lo <= min(o, cl) and h >= max(o, cl, lo) \
        and v >= 0 and not tb > v


# -- the hand-written numpy baseline ---------------------------------------------------------------


def prior_median(values: Floats, window: int, mad: bool) -> tuple[npt.NDArray[np.int64], Floats,
                                                                  Floats]:
    finite = np.isfinite(values)
    known = values[finite]
    count = np.cumsum(finite) - finite
    med = np.full(len(known) + 1, np.nan)
    dev = np.full(len(known) + 1, np.nan)
    for j in range(1, min(window, len(known) + 1)):  # partial windows: lower median
        part = np.sort(known[:j])
        med[j] = part[(j - 1) // 2]
        dev[j] = np.sort(np.abs(known[:j] - med[j]))[(j - 1) // 2]
    mid = (window - 1) // 2
    if len(known) >= window:
        windows = sliding_window_view(known, window)
        for s in range(0, len(windows), 8192):
            block = windows[s:s + 8192]
            m = np.partition(block, mid, axis=1)[:, mid]
            med[window + s:window + s + len(block)] = m
            if mad:
                d = np.partition(np.abs(block - m[:, None]), mid, axis=1)[:, mid]
                dev[window + s:window + s + len(block)] = d
    return count, med[count], dev[count]


def numpy_baseline(frame: pd.DataFrame, tf_ms: int) -> tuple[npt.NDArray[np.bool_],
                                                             npt.NDArray[np.bool_], Floats]:
    ts = frame["timestamp"].to_numpy(np.int64)
    o, h, lo, c, v = (frame[n].to_numpy(np.float64) for n in ("open", "high", "low", "close",
                                                               "volume"))
    tb = frame["taker_buy_volume"].to_numpy(np.float64)
    with np.errstate(all="ignore"):
        prices = np.stack([o, h, lo, c])
        aligned = ts % tf_ms == 0
        future = ts + tf_ms > NOW + T.clock_tolerance_ms
        marks = np.maximum.accumulate(np.where(aligned & ~future, ts, np.iinfo(np.int64).min))
        prev = np.concatenate(([np.iinfo(np.int64).min], marks[:-1]))
        n, ref, _ = prior_median(c, T.reference_window, False)
        ref = np.where(ref > 0, ref, np.nan)
        jump = (np.abs(prices - ref) / ref > T.max_jump).any(axis=0)
        fin = np.flatnonzero(np.isfinite(c))
        gap = (n == 0) | (ts - ts[fin[np.maximum(n - 1, 0)]] != tf_ms)
        k, avg, _ = prior_median(c, T.average_window, False)
        limit = T.max_price_multiple * np.where((k >= T.min_history) & (avg > 0), avg, np.nan)
        kv, vm, vmad = prior_median(v, T.volume_window, True)
        z = 0.6745 * (v - vm) / vmad
        hard = (~np.isfinite(prices).all(axis=0) | ~np.isfinite(v) | (prices <= 0).any(axis=0)
                | (prices >= limit).any(axis=0) | (jump & ~gap)
                | (h < o) | (h < c) | (lo > o) | (lo > c) | (h < lo) | (v < 0) | (tb < 0)
                | (tb > v) | ~aligned | future | (ts <= prev))
        outlier = (kv >= T.min_history) & (vmad > 0) & (z > T.volume_z)
        soft_count = (jump & gap).astype(np.int64) + outlier
    score = np.where(hard, 0.0, np.maximum(0.0, 1.0 - T.soft_penalty * soft_count))
    return hard, soft_count > 0, score


# -- frames ---------------------------------------------------------------------------------------


def synthetic(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.001, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0005, rows))
    volume = rng.lognormal(2, 1, rows)
    return pd.DataFrame({
        "timestamp": 1_700_000_040_000 // MINUTE_MS * MINUTE_MS + np.arange(rows) * MINUTE_MS,
        "open": open_, "high": np.maximum(open_, close) * (1 + spread),
        "low": np.minimum(open_, close) * (1 - spread), "close": close, "volume": volume,
        "taker_buy_volume": volume * rng.uniform(0, 1, rows)})


def day_frame(rows: list[list[str]]) -> pd.DataFrame:
    names = ["open", "high", "low", "close", "volume"]
    frame = pd.DataFrame({n: [float(r[i + 1]) for r in rows] for i, n in enumerate(names)})
    frame["taker_buy_volume"] = [float(r[9]) for r in rows]
    frame.insert(0, "timestamp", [int(r[0]) // 1000 for r in rows])
    return frame


def compare(frame: pd.DataFrame, repeat: int, number: int) -> tuple[float, float]:
    ours = validate_candle_frame(frame, Timeframe.M1, T, NOW)
    hard, soft, score = numpy_baseline(frame, MINUTE_MS)
    assert (ours["hard_rules"].map(bool).to_numpy() == hard).all()
    assert (ours["soft_rules"].map(bool).to_numpy() == soft).all()
    assert (ours["validation_score"].to_numpy() == score).all()
    mine = best_of(lambda: validate_candle_frame(frame, Timeframe.M1, T, NOW), repeat, number)
    base = best_of(lambda: numpy_baseline(frame, MINUTE_MS), repeat, number)
    return mine, base


def main() -> None:
    month = real_month()
    candles = candles_of(month)
    p50, p99 = time_points(candles, stateless=False)
    b50, b99 = time_points(candles, stateless=True)
    report("scalar validator per point p50", p50, b50, "us", "stateless checks only")
    report("scalar validator per point p99", p99, b99, "us", "stateless checks only",
           goal="p99 < 20 us")

    day = day_frame(month[:1440])
    mine, base = compare(day, repeat=7, number=20)
    report("frame validation, 1,440-row day", 1440 / mine, 1440 / base, "rows/s",
           "hand-written numpy", goal=">= 0.5x", higher_is_better=True)
    big = synthetic(1_000_000)
    big_mine, big_base = compare(big, repeat=3, number=1)
    report("frame validation, 1,000,000 rows", 1e6 / big_mine, 1e6 / big_base, "rows/s",
           "hand-written numpy", goal=">= 0.8x", higher_is_better=True)
    one = best_of(lambda: validate_candle_frame(day.iloc[:1], Timeframe.M1, T, NOW), 7, 50)
    intercept = mine - 1440 * big_mine / 1e6
    print(f"fixed cost per frame: {one * 1e6:,.0f} us for a 1-row frame; "
          f"{intercept * 1e6:,.0f} us intercept from the 1,440-row and 1M-row timings "
          f"(per row {big_mine / 1e6 * 1e9:,.0f} ns)")


if __name__ == "__main__":
    main()
