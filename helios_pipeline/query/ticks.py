"""Trades, tickers and book tops: the hot tier's recent ticks and the hourly ticker files.

Trades live only in the hot tier (Redis keeps ``HELIOS_HOT_RETENTION_MINUTES``). Ticker and book
ticks are also flushed, per closed UTC hour, to ``ticker_{YYYYMMDD}_{HH}.parquet`` by the
``ticker_snapshots`` asset; a range reads the hourly files it covers and Redis for the rest, one
row per tick (a tick is identified by its kind and writer sequence).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.domain.timeframe import ms_to_datetime
from helios_pipeline.storage.paths import ticker_path
from helios_pipeline.storage.ticker_files import TICKER_SCHEMA, load_ticker_file

HOUR_MS = 3_600_000
TICK_DECIMALS = ("price", "qty", "bid", "ask")


def hourly_files(data_dir: Path, symbol: str, start_ms: int, end_ms: int,
                 qualifier: str | None) -> pa.Table:
    """Ticker files of the hours ``start_ms..end_ms`` touches (hours without a file skipped)."""
    tables = []
    hour = ms_to_datetime(start_ms - start_ms % HOUR_MS)
    while hour.timestamp() * 1000 < end_ms:
        path = ticker_path(data_dir, symbol, hour, "parquet", qualifier)
        if path.is_file():
            tables.append(load_ticker_file(path).cast(TICKER_SCHEMA))
        hour += timedelta(hours=1)
    return pa.concat_tables(tables) if tables else TICKER_SCHEMA.empty_table()


def tick_frame(tables: Sequence[pa.Table], start_ms: int, end_ms: int,
               as_float: bool) -> pd.DataFrame:
    """One row per tick with exchange time in ``start_ms..end_ms``, by exchange time.

    Indexed by exchange time (UTC); duplicates (the same kind and sequence from a file and from
    Redis) appear once.
    """
    table = pa.concat_tables([t for t in tables if t.num_rows] or [TICKER_SCHEMA.empty_table()])
    times = table.column("exchange_ts").cast(pa.int64())
    inside = pc.and_(pc.greater_equal(times, start_ms), pc.less(times, end_ms))
    table = table.filter(inside)
    if table.num_rows:
        table = table.take(pc.sort_indices(table, [("exchange_ts", "ascending"),
                                                   ("kind", "ascending"), ("seq", "ascending")]))
        kinds = table.column("kind").to_numpy(zero_copy_only=False)
        seqs = table.column("seq").to_numpy()
        pairs = pd.MultiIndex.from_arrays([kinds, seqs])
        table = table.filter(pa.array(~np.asarray(pairs.duplicated())))
    if as_float:
        for name in TICK_DECIMALS:
            i = table.schema.get_field_index(name)
            # decimal -> text -> float64 is correctly rounded (as candle frames are)
            floats = table.column(name).cast(pa.string()).cast(pa.float64())
            table = table.set_column(i, name, floats)
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return frame.set_index("exchange_ts")
