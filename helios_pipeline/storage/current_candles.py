"""The rolling intraday candle file: live 1m candles of the last 24 hours, off Redis.

``market_data/{SYMBOL}/current/realtime_ohlcv_1m.parquet`` (the seed's ``current/`` layout) holds
the live 1m candles the stream service built from trades, for the 24 hours before its latest
flush. The ``ticker_snapshots`` run flushes it every hour from the hot tier, which keeps 90
minutes, so the file and Redis together cover today until the day's ``ohlcv_1m`` partition is
materialised from the exchange. Candle table schema (``OHLCV_SCHEMA``); columns the stream does
not build (quote and taker volumes) are null, ``is_validated`` is false (each trade was
validated, the candle as a whole was not) and a candle the stream knows may lack trades is
flagged ``live_incomplete``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.domain.columns import ANOMALY_FLAGS, TIMESTAMP
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, Timeframe
from helios_pipeline.storage.atomic import write_atomic
from helios_pipeline.storage.candle_codec import parquet_bytes, read_parquet
from helios_pipeline.storage.paths import realtime_ohlcv_path

LIVE_INCOMPLETE = "live_incomplete"
WINDOW_MS = DAY_MS


def live_table(candles: Iterable[LiveCandle]) -> pa.Table:
    """Live 1m candles as a candle table: sorted, one row per minute, its newest version."""
    newest: dict[int, LiveCandle] = {}
    for candle in candles:
        if candle.open_ms not in newest or newest[candle.open_ms].version < candle.version:
            newest[candle.open_ms] = candle
    rows = [newest[t] for t in sorted(newest)]
    columns = {
        TIMESTAMP: [c.open_ms for c in rows], "open": [c.open for c in rows],
        "high": [c.high for c in rows], "low": [c.low for c in rows],
        "close": [c.close for c in rows], "volume": [c.volume for c in rows],
        "trades": [c.trades for c in rows],
        "close_time": [c.open_ms + MINUTE_MS - 1 for c in rows],
        "is_validated": [False] * len(rows), "validation_score": [1.0] * len(rows),
        ANOMALY_FLAGS: [[] if c.complete else [LIVE_INCOMPLETE] for c in rows],
    }
    arrays = [pa.array(columns.get(f.name, [None] * len(rows)), f.type) for f in OHLCV_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=OHLCV_SCHEMA)


def current_candles_path(data_dir: Path, symbol: str, exchange: str | None = None) -> Path:
    """``market_data/{SYMBOL}/current/realtime_ohlcv_1m.parquet``."""
    return realtime_ohlcv_path(data_dir, symbol, Timeframe.M1, "parquet", exchange)


def store_current_candles(data_dir: Path, symbol: str, candles: Iterable[LiveCandle],
                          now_ms: int, exchange: str | None = None) -> int:
    """Merge ``candles`` (fresh from Redis) into the rolling file; keep the last 24 hours.

    A minute Redis still holds replaces the file's row (Redis has the newest version). Atomic;
    returns the rows the file now holds.
    """
    path = current_candles_path(data_dir, symbol, exchange)
    fresh = live_table(candles)
    kept = read_parquet(path) if path.is_file() else OHLCV_SCHEMA.empty_table()
    fresh_times = fresh.column(TIMESTAMP).cast(pa.int64())
    older = kept.filter(pc.invert(pc.is_in(kept.column(TIMESTAMP).cast(pa.int64()),
                                           value_set=fresh_times)))
    merged = pa.concat_tables([older, fresh]).sort_by(TIMESTAMP)
    times = merged.column(TIMESTAMP).cast(pa.int64())
    merged = merged.filter(pc.greater_equal(times, now_ms - WINDOW_MS))
    write_atomic(path, parquet_bytes(merged))
    rows: int = merged.num_rows
    return rows
