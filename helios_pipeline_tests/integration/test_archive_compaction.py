"""Tier movement on a real data root: a closed month of daily files -> the cold archive."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from helios_pipeline.batch.archive import (
    ArchiveVerificationError,
    MonthNotClosedError,
    Tiers,
    compact_month,
)
from helios_pipeline.domain.aggregate import aggregate_table
from helios_pipeline.domain.timeframe import Bucket, Timeframe, days_between
from helios_pipeline.storage.archive import ArchivedMonth, CandleArchive, table_hash
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.archive_data import day_table

SYMBOL = "BTC/USDT"
APRIL = days_between(date(2024, 4, 1), date(2024, 4, 30))
TODAY = date(2024, 5, 20)  # with 30 warm days, April 1..19 leave the warm tier


def write_days(root: Path, days: list[date], base: str = "60000.12345678") -> None:
    store, writes = CandleStore(root), []
    for day in days:
        minutes = day_table(day, base=base)
        hours = aggregate_table(minutes, Bucket.of(Timeframe.H1))
        for timeframe, table in ((Timeframe.M1, minutes), (Timeframe.H1, hours)):
            stored = store.store_table(SYMBOL, timeframe, day, table)
            writes.append(PartitionWrite("binance", SYMBOL, timeframe, day, stored, "test"))
    MetadataStore(root / "metadata.sqlite").record_partitions(writes)


def tiers(root: Path, archive: CandleArchive | None = None) -> Tiers:
    return Tiers(CandleStore(root), archive or CandleArchive(root / "archive"),
                 MetadataStore(root / "metadata.sqlite"), "binance")


def daily_rows(root: Path, timeframe: Timeframe, days: list[date]) -> pa.Table:
    return pa.concat_tables([CandleStore(root).load_table(SYMBOL, timeframe, d) for d in days])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_days(tmp_path / "data", APRIL)
    return tmp_path / "data"


def test_a_closed_month_is_archived_verified_and_trimmed_to_the_warm_window(root: Path) -> None:
    before = {tf: daily_rows(root, tf, APRIL) for tf in (Timeframe.M1, Timeframe.H1)}
    done = compact_month(tiers(root), SYMBOL, date(2024, 4, 1), TODAY, warm_days=30)
    assert [c.timeframe for c in done] == [Timeframe.M1, Timeframe.H1]  # no 5m..1d files here
    store, archive = CandleStore(root), CandleArchive(root / "archive")
    for compaction in done:
        tf = compaction.timeframe
        assert compaction.written
        assert compaction.archived.rows == before[tf].num_rows == 30 * tf.per_day
        assert compaction.archived.content_hash == table_hash(before[tf])
        assert len(compaction.removed) == 19
        assert compaction.kept == APRIL[19:]
        assert [store.find(SYMBOL, tf, d) is None for d in APRIL] == [True] * 19 + [False] * 11
        back = archive.read_month("binance", SYMBOL, tf, date(2024, 4, 1))
        assert back is not None
        assert back.column("close").to_pylist() == before[tf].column("close").to_pylist()
    (m1, h1) = MetadataStore(root / "metadata.sqlite").archive_months("binance", SYMBOL)
    assert (m1.timeframe, h1.timeframe) == (Timeframe.H1, Timeframe.M1)  # ordered by name
    assert h1.days == tuple(APRIL)
    assert h1.daily_removed == tuple(APRIL[:19])


def test_compacting_again_keeps_removed_days_and_picks_up_a_refetched_day(root: Path) -> None:
    compact_month(tiers(root), SYMBOL, date(2024, 4, 1), TODAY, warm_days=30)
    again = compact_month(tiers(root), SYMBOL, date(2024, 4, 1), TODAY, warm_days=30)
    assert [c.written for c in again] == [False, False]
    assert [c.archived.rows for c in again] == [30 * 1440, 30 * 24]
    assert all(c.removed == [] for c in again)
    write_days(root, [date(2024, 4, 25)], base="61000.5")  # a re-fetch changed a warm day
    third = compact_month(tiers(root), SYMBOL, date(2024, 4, 1), TODAY, warm_days=30,
                          timeframes=[Timeframe.M1])
    assert third[0].written
    back = CandleArchive(root / "archive").load_range(
        "binance", SYMBOL, Timeframe.M1, *day_span(date(2024, 4, 25)))
    assert back.column("close")[0].as_py() == day_table(date(2024, 4, 25), 1, "61000.5").column(
        "close")[0].as_py()
    assert third[0].archived.rows == 30 * 1440


def day_span(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return start, start + 86_400_000


class DroppingArchive(CandleArchive):
    """An archive store that loses the last row of what it is given (a broken disk or bucket)."""

    def write_month(self, exchange: str, symbol: str, timeframe: Timeframe, month: date,
                    table: pa.Table, source_hashes: dict[date, str]) -> ArchivedMonth:
        return super().write_month(exchange, symbol, timeframe, month,
                                   table.slice(0, table.num_rows - 1), source_hashes)


def test_nothing_is_removed_when_the_archive_does_not_read_back_equal(root: Path) -> None:
    broken = DroppingArchive(root / "archive")
    with pytest.raises(ArchiveVerificationError, match="43199 rows"):
        compact_month(tiers(root, broken), SYMBOL, date(2024, 4, 1), TODAY, warm_days=30)
    store = CandleStore(root)
    assert all(store.find(SYMBOL, Timeframe.M1, d) is not None for d in APRIL)
    assert MetadataStore(root / "metadata.sqlite").archive_months("binance") == []


def test_an_open_month_is_refused(root: Path) -> None:
    with pytest.raises(MonthNotClosedError, match="2024-04 is not closed on 2024-04-30"):
        compact_month(tiers(root), SYMBOL, date(2024, 4, 1), date(2024, 4, 30), warm_days=30)
