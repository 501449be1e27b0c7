"""``CandleArchive`` on a local folder: exact round trip, content hash, months, days, ranges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import Timeframe, day_start_ms
from helios_pipeline.storage.archive import ArchiveError, CandleArchive, table_hash
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline_tests.archive_data import day_table

SYMBOL = "BTC/USDT"


def test_a_month_round_trips_exactly_with_its_hash_and_days(tmp_path: Path) -> None:
    archive = CandleArchive(tmp_path / "archive")
    days = [date(2024, 5, 2), date(2024, 5, 1)]
    table = pa.concat_tables([day_table(d) for d in days])  # out of order on purpose
    written = archive.write_month("binance", SYMBOL, Timeframe.M1, date(2024, 5, 17), table,
                                  {d: f"hash-{d}" for d in days})
    back = archive.read_month("binance", SYMBOL, Timeframe.M1, date(2024, 5, 1))
    assert back is not None
    assert back.schema.equals(OHLCV_SCHEMA)
    expected = table.sort_by("timestamp")
    assert back.column("close").to_pylist() == expected.column("close").to_pylist()
    assert back.column("volume")[0].as_py() == Decimal("0.000000000000000001")
    assert table_hash(back) == table_hash(expected) == written.content_hash
    info = archive.info("binance", SYMBOL, Timeframe.M1, date(2024, 5, 1))
    assert info is not None
    assert info.days == (date(2024, 5, 1), date(2024, 5, 2))
    assert info.rows == 2880
    assert info.source_hashes[date(2024, 5, 1)] == "hash-2024-05-01"
    meta = pq.read_metadata(written.path)
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert meta.row_group(0).column(0).statistics.has_min_max
    assert "exchange=binance/symbol=BTCUSDT/timeframe=1m/month=2024-05" in written.path


def test_the_hash_changes_with_one_digit_and_not_with_chunking(tmp_path: Path) -> None:
    one, two = day_table(date(2024, 5, 1)), day_table(date(2024, 5, 2))
    assert table_hash(pa.concat_tables([one, two])) == table_hash(
        pa.concat_tables([one, two]).combine_chunks())
    changed = day_table(date(2024, 5, 2), base="60000.12345679")
    assert table_hash(pa.concat_tables([one, two])) != table_hash(pa.concat_tables([one, changed]))


def test_the_hash_of_a_daily_file_read_back_equals_the_table_written(tmp_path: Path) -> None:
    table = day_table(date(2024, 5, 1))
    stored = CandleStore(tmp_path).store_table(SYMBOL, Timeframe.M1, date(2024, 5, 1), table)
    assert table_hash(CandleStore(tmp_path).load_table(SYMBOL, Timeframe.M1,
                                                       date(2024, 5, 1))) == table_hash(table)
    assert stored.rows == 1440


def test_months_days_and_ranges(tmp_path: Path) -> None:
    archive = CandleArchive(f"file://{tmp_path}/a")
    assert archive.months("binance", SYMBOL) == []
    for day in (date(2024, 4, 30), date(2024, 5, 1)):
        archive.write_month("binance", SYMBOL, Timeframe.M1, day, day_table(day, 10), {day: "h"})
    assert archive.months("binance", SYMBOL) == [date(2024, 4, 1), date(2024, 5, 1)]
    assert archive.months("okx", SYMBOL) == []
    assert archive.archived_days("binance", SYMBOL, Timeframe.M1) == {date(2024, 4, 30),
                                                                       date(2024, 5, 1)}
    start = day_start_ms(date(2024, 4, 30)) + 5 * 60_000
    end = day_start_ms(date(2024, 5, 1)) + 3 * 60_000
    rows = archive.load_range("binance", SYMBOL, Timeframe.M1, start, end)
    times = rows.column("timestamp").cast(pa.int64()).to_pylist()
    assert times == [start + 60_000 * i for i in range(5)] + [end - 60_000 * i for i in (3, 2, 1)]


def test_rows_outside_the_month_are_refused(tmp_path: Path) -> None:
    archive = CandleArchive(tmp_path)
    with pytest.raises(ArchiveError, match="outside 2024-04"):
        archive.write_month("binance", SYMBOL, Timeframe.M1, date(2024, 4, 1),
                            day_table(date(2024, 5, 1), 5), {date(2024, 4, 30): "h"})
    with pytest.raises(ArchiveError, match="not all in 2024-04"):
        archive.write_month("binance", SYMBOL, Timeframe.M1, date(2024, 4, 1),
                            day_table(date(2024, 4, 1), 5), {date(2024, 5, 1): "h"})


def test_a_bad_url_is_refused_without_showing_its_secret() -> None:
    with pytest.raises(ArchiveError, match=r"s3://\*\*\*@bucket/p") as caught:
        CandleArchive("s3://key:hunter2@bucket/p?colour=blue")
    assert "hunter2" not in str(caught.value)


def test_the_hive_layout_scans_as_one_dataset(tmp_path: Path) -> None:
    archive = CandleArchive(tmp_path)
    for symbol, day in (("BTC/USDT", date(2024, 4, 30)), ("BTC/USDT", date(2024, 5, 1)),
                        ("ETH/USDT", date(2024, 5, 1))):
        archive.write_month("binance", symbol, Timeframe.M1, day, day_table(day, 10), {day: "h"})
    dataset = ds.dataset(tmp_path / "ohlcv", format="parquet", partitioning="hive")
    may_btc = dataset.to_table(filter=(ds.field("symbol") == "BTCUSDT")
                               & (ds.field("month") == "2024-05"))
    assert may_btc.num_rows == 10
    assert set(dataset.to_table(columns=["symbol"]).column("symbol").to_pylist()) == {
        "BTCUSDT", "ETHUSDT"}


def test_duckdb_reads_the_archive_with_its_hive_columns_and_exact_values(tmp_path: Path) -> None:
    """The layout and encodings stay readable by other Parquet tools (docs/archive.md)."""
    archive = CandleArchive(tmp_path)
    day = date(2024, 5, 1)
    table = day_table(day, 10)
    archive.write_month("binance", "BTC/USDT", Timeframe.M1, day, table, {day: "h"})
    rows = duckdb.execute(
        "SELECT symbol, month, timestamp, close, volume FROM read_parquet(?, hive_partitioning "
        "= true) ORDER BY timestamp", [f"{tmp_path}/ohlcv/**/*.parquet"]).fetchall()
    assert [(r[0], str(r[1])[:7]) for r in rows] == [("BTCUSDT", "2024-05")] * 10
    assert [r[3] for r in rows] == table.column("close").to_pylist()
    assert [r[4] for r in rows] == table.column("volume").to_pylist()
