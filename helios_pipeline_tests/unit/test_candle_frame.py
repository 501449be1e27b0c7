"""``to_frame``: the DataFrame built column by column equals the obvious conversion, row by row."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from helios_pipeline.domain.columns import ANOMALY_FLAGS, DECIMAL_COLUMNS, TIMESTAMP, TRADES
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.storage import candle_codec
from helios_pipeline.storage.candle_codec import to_frame
from helios_pipeline_tests.archive_data import day_table


def odd_table(days: int) -> pa.Table:
    """``days`` day tables in as many chunks, with a null trade count and a few flags."""
    tables = [day_table(date(2024, 5, 1 + i), base=f"6000{i}.12345678") for i in range(days)]
    table = pa.concat_tables(tables)
    trades = table.column(TRADES).to_pylist()
    trades[3] = None
    flags = [[] for _ in range(table.num_rows)]
    flags[5], flags[-1] = ["price_jump"], ["partial_bucket", "volume_outlier"]
    table = table.set_column(table.schema.get_field_index(TRADES), TRADES,
                             pa.array(trades, pa.int64()))
    table = table.set_column(table.schema.get_field_index(ANOMALY_FLAGS), ANOMALY_FLAGS,
                             pa.array(flags, OHLCV_SCHEMA.field(ANOMALY_FLAGS).type))
    return pa.Table.from_batches(
        [b for t in (table.slice(0, 1000), table.slice(1000)) for b in t.to_batches()])


@pytest.mark.parametrize("parallel_from", [10**9, 1_000])  # serial, then the thread pool
def test_the_frame_equals_the_obvious_conversion(monkeypatch: pytest.MonkeyPatch,
                                                 parallel_from: int) -> None:
    monkeypatch.setattr(candle_codec, "_PARALLEL_FROM_ROWS", parallel_from)
    table = odd_table(3)
    assert table.column(TIMESTAMP).num_chunks > 1
    frame = to_frame(table, as_float=True)
    rows = table.to_pylist()

    assert list(frame.index) == [r[TIMESTAMP] for r in rows]
    for name in DECIMAL_COLUMNS:
        assert frame[name].tolist() == [float(str(r[name])) for r in rows], name
    assert frame[TRADES].dtype == "Int64"
    assert frame[TRADES].isna().tolist() == [r[TRADES] is None for r in rows]
    assert frame[TRADES].fillna(-1).tolist() == [-1 if r[TRADES] is None else r[TRADES]
                                                for r in rows]
    assert frame[ANOMALY_FLAGS].tolist() == [tuple(r[ANOMALY_FLAGS]) for r in rows]
    assert list(frame.columns) == [f.name for f in OHLCV_SCHEMA if f.name != TIMESTAMP]


def test_exact_frames_keep_decimals_and_empty_tables_keep_their_columns() -> None:
    frame = to_frame(odd_table(1), as_float=False)
    assert frame["close"].iloc[0] == Decimal("60000.12345678")
    empty = to_frame(OHLCV_SCHEMA.empty_table(), as_float=True)
    assert empty.empty
    assert list(empty.columns) == list(frame.columns)
    assert isinstance(empty.index, pd.DatetimeIndex)
    assert str(empty.index.tz) == "UTC"
