"""The query engine: ``MarketDataQuery`` beside what a user would write by hand, in the same run.

A year of synthetic 1m candles for one symbol (a random walk with exact 2-decimal prices) is
written as the platform writes it: one daily Parquet file per day, catalog rows in SQLite.

1. Last 1,000 1m candles as a float frame, uncached (``cache_ttl_s=0``): p50 and p99 of
   ``ohlcv(limit=1000, as_float=True)`` vs a raw ``pq.read_table`` of the same two files,
   concatenated, sliced and converted (decimals cast to float64). Goal: p50 < 5 ms and <= 2x.
   The same call answered by the cache (identical call within a second).
2. One year of 1m as a float frame from the daily files vs a raw read of the same 365 files.
3. Volume profile of 30 days of 1m (50 bins): the profile computation vs ``numpy.histogram`` of
   the typical price weighted by volume on the same arrays (goal <= 2x); and end to end.
4. ``latest_price``: p50/p99 vs a raw redis-py ``GET`` of a key (goal p99 <= 1.2x); the cached
   path p99 (goal < 20 us). Starts its own redis-server.

Run from the project root: ``python -m benchmarks.bench_query`` (about a minute).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from benchmarks._common import redis_server, report
from helios_pipeline.domain.columns import DECIMAL_COLUMNS
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Timeframe, day_start_ms, days_between
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.signals.profile import volume_profile
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.metadata import MetadataStore

SYMBOL = "BTC/USDT"
FIRST, LAST = date(2023, 1, 1), date(2023, 12, 31)
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def synthetic_day(day: date, rng: np.random.Generator, start_price: float) -> pa.Table:
    """1,440 candles of a random walk, prices with two decimals, volumes with five."""
    n = 1440
    times = day_start_ms(day) + 60_000 * np.arange(n, dtype=np.int64)
    close = np.round(start_price * np.exp(np.cumsum(rng.normal(0, 0.0008, n))), 2)
    open_ = np.r_[start_price, close[:-1]]
    high = np.round(np.maximum(open_, close) * (1 + rng.uniform(0, 0.0005, n)), 2)
    low = np.round(np.minimum(open_, close) * (1 - rng.uniform(0, 0.0005, n)), 2)
    volume = np.round(rng.gamma(2.0, 3.0, n), 5)

    def dec(values: np.ndarray, places: int) -> pa.Array:
        return pa.array([f"{v:.{places}f}" for v in values]).cast(OHLCV_SCHEMA.field("open").type)

    columns = {
        "timestamp": pa.array(times).cast(OHLCV_SCHEMA.field("timestamp").type),
        "open": dec(open_, 2), "high": dec(high, 2), "low": dec(low, 2), "close": dec(close, 2),
        "volume": dec(volume, 5), "quote_volume": dec(volume * close, 5),
        "trades": pa.array(rng.integers(10, 500, n)),
        "taker_buy_volume": dec(volume / 2, 5),
        "taker_buy_quote_volume": dec(volume * close / 2, 5),
        "close_time": pa.array(times + 59_999), "is_validated": pa.array([True] * n),
        "validation_score": pa.array([1.0] * n),
        "anomaly_flags": pa.array([[]] * n, OHLCV_SCHEMA.field("anomaly_flags").type),
    }
    return pa.Table.from_arrays([columns[f.name] for f in OHLCV_SCHEMA], schema=OHLCV_SCHEMA)


def write_year(root: Path) -> list[Path]:
    rng = np.random.default_rng(7)
    store = CandleStore(root)
    writes, price = [], 20_000.0
    for day in days_between(FIRST, LAST):
        table = synthetic_day(day, rng, price)
        price = float(table.column("close")[-1].as_py())
        stored = store.store_table(SYMBOL, Timeframe.M1, day, table)
        writes.append(PartitionWrite("binance", SYMBOL, Timeframe.M1, day, stored, "synthetic"))
    MetadataStore(root / "metadata.sqlite").record_partitions(writes)
    return [w.stored.path for w in writes]


def raw_float_frame(paths: list[Path], last: int | None = None) -> pd.DataFrame:
    """What a user would write: read the files, concatenate, cast decimals, to pandas."""
    table = pa.concat_tables([pq.read_table(p) for p in paths])
    if last is not None:
        table = table.slice(table.num_rows - last)
    for name in DECIMAL_COLUMNS:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.cast(table.column(name), pa.float64()))
    return table.to_pandas().set_index("timestamp")


def timings_us(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def p(values: list[float], q: int) -> float:
    return float(np.percentile(values, q))


def last_thousand(query: MarketDataQuery, paths: list[Path]) -> None:
    uncached = timings_us(lambda: query.ohlcv(SYMBOL, "1m", limit=1000, as_float=True), 300)
    raw = timings_us(lambda: raw_float_frame(paths[-2:], last=1000), 300)
    report("last 1,000 1m candles, float frame, uncached: p50", p(uncached, 50) / 1000,
           p(raw, 50) / 1000, "ms", "raw pq.read_table of the 2 files + cast", "< 5 ms, <= 2x")
    report("last 1,000 1m candles, float frame, uncached: p99", p(uncached, 99) / 1000,
           p(raw, 99) / 1000, "ms", "raw pq.read_table of the 2 files + cast")
    cached = MarketDataQuery(query.data_dir, clock_ms=lambda: int(NOW.timestamp() * 1000),
                             start_date="2023-01-01")
    hits = timings_us(lambda: cached.ohlcv(SYMBOL, "1m", limit=1000, as_float=True), 300)
    report("last 1,000 1m candles, answered by the cache: p50", p(hits, 50) / 1000,
           p(raw, 50) / 1000, "ms", "raw pq.read_table of the 2 files + cast")


def one_year(query: MarketDataQuery, paths: list[Path]) -> None:
    def ours() -> None:
        query.ohlcv(SYMBOL, "1m", start=FIRST, end=NOW, as_float=True)

    ours_s = statistics.median(timings_us(ours, 5)) / 1e6
    raw_s = statistics.median(timings_us(lambda: raw_float_frame(paths), 5)) / 1e6
    report("one year of 1m (525,600 rows) as a float frame, from 365 daily files", ours_s * 1000,
           raw_s * 1000, "ms", "raw pq.read_table of the same files + cast")


def profile(query: MarketDataQuery) -> None:
    start = NOW - timedelta(days=30)
    frame = query.ohlcv(SYMBOL, "1m", start=start, end=NOW, as_float=True)
    low, high = frame["low"].to_numpy(), frame["high"].to_numpy()
    close, volume = frame["close"].to_numpy(), frame["volume"].to_numpy()
    ours = statistics.median(timings_us(lambda: volume_profile(frame, bins=50), 50))
    base = statistics.median(timings_us(
        lambda: np.histogram((high + low + close) / 3, bins=50, weights=volume), 50))
    report("volume profile of 30 days of 1m (43,200 candles, 50 bins): computation", ours / 1000,
           base / 1000, "ms", "numpy.histogram of the typical price", "<= 2x")
    whole = statistics.median(timings_us(
        lambda: query.volume_profile(SYMBOL, start, NOW, bins=50), 10))
    print(f"volume profile of 30 days end to end (read 30 files + compute): {whole / 1000:.1f} ms")


def latest_price(root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as port:
        url = f"redis://127.0.0.1:{port}/0"
        hot = HotStore(url)
        us = time.time_ns() // 1000
        hot.append([Tick("binance", SYMBOL, "ticker", us // 1000, us, Decimal("42123.45"),
                         Decimal("1"), Decimal("42123.44"), Decimal("42123.46"), seq=us)])
        client = redis.Redis.from_url(url)
        client.set("plain", b"42123.45")
        query = MarketDataQuery(root, redis_url=url, cache_ttl_s=0)
        cached = MarketDataQuery(root, redis_url=url)
        for _ in range(500):  # warm up connections
            query.latest_price(SYMBOL)
            client.get("plain")
        ours = timings_us(lambda: query.latest_price(SYMBOL), 5000)
        raw = timings_us(lambda: client.get("plain"), 5000)
        hits = timings_us(lambda: cached.latest_price(SYMBOL), 5000)
        report("latest_price p50", p(ours, 50), p(raw, 50), "us", "raw redis-py GET")
        report("latest_price p99", p(ours, 99), p(raw, 99), "us", "raw redis-py GET", "<= 1.2x")
        report("latest_price p99, cached", p(hits, 99), p(raw, 99), "us", "raw redis-py GET",
               "< 20 us")
        for q in (query, cached):
            q.close()
        hot.close()
        client.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        began = time.perf_counter()
        paths = write_year(root)
        print(f"(wrote {len(paths)} daily files in {time.perf_counter() - began:.1f} s)")
        query = MarketDataQuery(root, clock_ms=lambda: int(NOW.timestamp() * 1000),
                                start_date="2023-01-01", cache_ttl_s=0)
        year = query.ohlcv(SYMBOL, "1m", start=FIRST, end=NOW, as_float=True)
        assert len(year) == 525_600, "the query must return the whole synthetic year"
        last_thousand(query, paths)
        one_year(query, paths)
        profile(query)
        latest_price(root)


if __name__ == "__main__":
    main()
