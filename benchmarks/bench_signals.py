"""Indicators and grid suggestions: ours beside TA-Lib and plain baselines, in the same run.

1. Batch RSI(14) + MACD(12,26,9) + Bollinger(20,2) + ATR(14) on 1,000,000 synthetic 1m candles
   (a random walk around 30,000): ``signals.indicators`` vs TA-Lib's C functions on the same
   arrays, best of 5. Goal: <= 3x TA-Lib. Each indicator is also shown on its own.
2. Incremental update of all five indicators (``IndicatorSet``: + ADX) per closed candle, with
   ``Decimal`` prices as the stream has them: p50/p99 over 20,000 candles vs recomputing the
   latest values with TA-Lib on the last 300 candles per candle (what a bot without incremental
   state does). Goal: p99 < 50 us.
3. Grid suggestion for 50 symbols x one year of 1m candles each (525,600 per symbol):
   ``suggest_grid`` total time, split by phase (hourly bars, ATR, volume profile, levels,
   regime), vs a bare baseline on the same candles (pandas hourly resample + TA-Lib ATR +
   ``numpy.histogram`` of the typical price).

Run from the project root: ``python -m benchmarks.bench_signals`` (about two minutes).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import pandas as pd
import talib

from benchmarks._common import best_of, report
from helios_pipeline.signals import grid as grid_module
from helios_pipeline.signals import indicators as ind
from helios_pipeline.signals.frame import IndicatorSet
from helios_pipeline.signals.grid import suggest_grid

ROWS = 1_000_000
SYMBOLS = 50
YEAR = 525_600


def walk(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """High, low, close, volume of a random walk around 30,000."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, rows)))
    high = close * (1 + rng.uniform(0, 0.0008, rows))
    low = close * (1 - rng.uniform(0, 0.0008, rows))
    return high, low, close, rng.gamma(2.0, 3.0, rows)


def batch() -> None:
    high, low, close, _ = walk(ROWS, 1)
    pairs: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("RSI", lambda: ind.rsi(close), lambda: talib.RSI(close, 14)),
        ("MACD", lambda: ind.macd(close), lambda: talib.MACD(close, 12, 26, 9)),
        ("Bollinger", lambda: ind.bollinger(close), lambda: talib.BBANDS(close, 20, 2, 2, 0)),
        ("ATR", lambda: ind.atr(high, low, close), lambda: talib.ATR(high, low, close, 14)),
    ]
    ours = best_of(lambda: [mine() for _, mine, _ in pairs])
    theirs = best_of(lambda: [ref() for _, _, ref in pairs])
    report("batch RSI+MACD+BB+ATR, 1M candles", ours * 1e3, theirs * 1e3, "ms", "TA-Lib",
           "<= 3x")
    for name, mine, ref in pairs:
        report(f"  {name}, 1M candles", best_of(mine) * 1e3, best_of(ref) * 1e3, "ms", "TA-Lib")


class Candle(NamedTuple):
    high: Decimal
    low: Decimal
    close: Decimal


def incremental() -> None:
    count, window = 20_000, 300
    high, low, close, _ = walk(count + window, 2)
    candles = [Candle(Decimal(f"{h:.2f}"), Decimal(f"{lo:.2f}"), Decimal(f"{c:.2f}"))
               for h, lo, c in zip(high, low, close, strict=True)]
    indicators = IndicatorSet()
    for candle in candles[:window]:
        indicators.update(candle)
    ours = []
    for candle in candles[window:]:
        start = time.perf_counter()
        indicators.update(candle)
        ours.append(time.perf_counter() - start)
    theirs = []
    for end in range(window, window + 2_000):
        start = time.perf_counter()
        h = np.array([float(c.high) for c in candles[end - window + 1: end + 1]])
        lo = np.array([float(c.low) for c in candles[end - window + 1: end + 1]])
        c = np.array([float(c.close) for c in candles[end - window + 1: end + 1]])
        talib.RSI(c, 14)
        talib.MACD(c, 12, 26, 9)
        talib.BBANDS(c, 20, 2, 2, 0)
        talib.ATR(h, lo, c, 14)
        talib.ADX(h, lo, c, 14)
        theirs.append(time.perf_counter() - start)
    for q in (50, 99):
        report(f"incremental all five, per candle p{q}", float(np.percentile(ours, q)) * 1e6,
               float(np.percentile(theirs, q)) * 1e6, "us", "TA-Lib on the last 300 candles",
               "p99 < 50 us" if q == 99 else "")


def timed(phases: dict[str, float], name: str, fn: Callable[..., object]) -> Callable[..., object]:
    """``fn``, adding its wall time to ``phases[name]``."""
    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] += time.perf_counter() - start
    return wrapper


def year_frame(seed: int) -> pd.DataFrame:
    high, low, close, volume = walk(YEAR, seed)
    index = pd.date_range("2025-01-01", periods=YEAR, freq="1min", tz="UTC")
    return pd.DataFrame({"high": high, "low": low, "close": close, "volume": volume},
                        index=index)


def grids() -> None:
    phases: dict[str, float] = defaultdict(float)
    originals = {name: getattr(grid_module, name)
                 for name in ("_bars", "volume_profile", "find_levels", "_regime")}
    labels = {"_bars": "hourly bars", "volume_profile": "volume profile",
              "find_levels": "levels", "_regime": "regime"}
    ours = theirs = 0.0
    for seed in range(SYMBOLS):
        frame = year_frame(100 + seed)
        for name, fn in originals.items():
            setattr(grid_module, name, timed(phases, labels[name], fn))
        start = time.perf_counter()
        suggest_grid(frame)
        ours += time.perf_counter() - start
        for name, fn in originals.items():
            setattr(grid_module, name, fn)
        start = time.perf_counter()
        bars = frame.resample("1h").agg({"high": "max", "low": "min", "close": "last"})
        talib.ATR(*(bars[c].to_numpy() for c in ("high", "low", "close")), 14)
        typical = (frame["high"] + frame["low"] + frame["close"]).to_numpy() / 3
        np.histogram(typical, bins=100, weights=frame["volume"].to_numpy())
        theirs += time.perf_counter() - start
    report(f"grid suggestion, {SYMBOLS} symbols x 1 year of 1m", ours, theirs, "s",
           "resample + TA-Lib ATR + numpy.histogram")
    rest = ours - sum(phases.values())
    split = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())
    print(f"  where it goes: {split}, the rest (ATR, grid arithmetic) {rest:.2f} s")


def main() -> None:
    batch()
    incremental()
    grids()


if __name__ == "__main__":
    main()
