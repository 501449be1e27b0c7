"""Hourly ticker files: realtime ticks of one symbol and UTC hour, and the rolling current hour.

``market_data/{SYMBOL}/{YYYY}/{MM}/ticker_{YYYYMMDD}_{HH}.parquet`` holds the hour's ticker and
book-top ticks (exact decimals, sorted by the writer's sequence); ``{SYMBOL}/current/
realtime_ticker.parquet`` the last hour up to the latest flush. Writes are atomic; the same ticks
give the same bytes, so re-materialising an hour changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from helios_pipeline.domain.schema import DECIMAL_TYPE
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.storage.atomic import write_atomic
from helios_pipeline.storage.candle_codec import parquet_bytes
from helios_pipeline.storage.paths import realtime_ticker_path, ticker_path

TICKER_SCHEMA = pa.schema([
    pa.field("exchange_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("received_ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("price", DECIMAL_TYPE),
    pa.field("qty", DECIMAL_TYPE),
    pa.field("bid", DECIMAL_TYPE),
    pa.field("ask", DECIMAL_TYPE),
    pa.field("event_id", pa.int64()),
    pa.field("seq", pa.int64(), nullable=False),
])


@dataclass(frozen=True)
class StoredTickerFile:
    """Where a ticker file was written, how many ticks it holds and its content hash."""

    path: Path
    rows: int
    content_hash: str


def ticker_table(ticks: Sequence[Tick]) -> pa.Table:
    """Arrow table of ``ticks`` sorted by sequence, decimals exact."""
    ordered = sorted(ticks, key=lambda t: t.seq)

    def decimals(name: str) -> pa.Array:
        values: list[Decimal | None] = [getattr(t, name) for t in ordered]
        text = [None if v is None else str(v) for v in values]
        return pa.array(text, type=pa.string()).cast(DECIMAL_TYPE)

    columns = [
        pa.array([t.exchange_ts_ms for t in ordered], type=pa.int64()).cast(TICKER_SCHEMA[0].type),
        pa.array([t.received_ts_us for t in ordered], type=pa.int64()).cast(TICKER_SCHEMA[1].type),
        pa.array([t.kind for t in ordered], type=pa.string()),
        decimals("price"), decimals("qty"), decimals("bid"), decimals("ask"),
        pa.array([t.event_id for t in ordered], type=pa.int64()),
        pa.array([t.seq for t in ordered], type=pa.int64()),
    ]
    return pa.Table.from_arrays(columns, schema=TICKER_SCHEMA)


def store_ticker_hour(
    data_dir: Path, symbol: str, hour: datetime, ticks: Sequence[Tick]
) -> StoredTickerFile:
    """Write the ticks of ``symbol`` in the UTC hour starting at ``hour`` (atomic, idempotent)."""
    return _write(ticker_path(data_dir, symbol, hour, "parquet"), ticks)


def store_current_ticker(data_dir: Path, symbol: str, ticks: Sequence[Tick]) -> StoredTickerFile:
    """Replace the rolling ``current/realtime_ticker`` file with ``ticks`` (the last hour)."""
    return _write(realtime_ticker_path(data_dir, symbol, "parquet"), ticks)


def load_ticker_file(path: Path) -> pa.Table:
    """Read a ticker file back (decimals as ``decimal128``, timestamps tz-aware)."""
    return pq.read_table(path)


def _write(path: Path, ticks: Sequence[Tick]) -> StoredTickerFile:
    data = parquet_bytes(ticker_table(ticks))
    write_atomic(path, data)
    return StoredTickerFile(path, len(ticks), hashlib.sha256(data).hexdigest())
