"""``MarketDataQuery`` over the cold archive, the warm daily files and the live hot tier at once.

Daily files for 2024-03-01..2024-05-03 are written, March and April compacted with a 10-day
warm window on 2024-05-04 (so March 1 .. April 23 live only in the archive), and Redis holds the
first half hour of 2024-05-04, "now" being 00:30 that day.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis

from helios_pipeline.batch.archive import Tiers, compact_month
from helios_pipeline.domain.aggregate import aggregate_table
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import Bucket, Timeframe, datetime_to_ms, days_between
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.storage.archive import CandleArchive
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.hot.keys import candle_key
from helios_pipeline.storage.hot.live_candles import encode_candle
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.archive_data import day_table

SYMBOL = "BTC/USDT"
DAYS = days_between(date(2024, 3, 1), date(2024, 5, 3))
TODAY = datetime(2024, 5, 4, tzinfo=UTC)
NOW_MS = datetime_to_ms(TODAY) + 30 * 60_000
FIRST_WARM = date(2024, 4, 24)


def base(day: date, bump: int = 0) -> str:
    return f"{60000 + day.toordinal() % 1000 + bump}.12345678"


def write_days(root: Path, days: list[date], bump: int = 0) -> None:
    store, writes = CandleStore(root), []
    for day in days:
        minutes = day_table(day, base=base(day, bump))
        for timeframe, table in ((Timeframe.M1, minutes),
                                 (Timeframe.H1, aggregate_table(minutes, Bucket.of(Timeframe.H1)))):
            stored = store.store_table(SYMBOL, timeframe, day, table)
            writes.append(PartitionWrite("binance", SYMBOL, timeframe, day, stored, "test"))
    MetadataStore(root / "metadata.sqlite").record_partitions(writes)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("archive_query") / "data"
    write_days(data, DAYS)
    tiers = Tiers(CandleStore(data), CandleArchive(data / "archive"),
                  MetadataStore(data / "metadata.sqlite"), "binance")
    for month in (date(2024, 3, 1), date(2024, 4, 1)):
        compact_month(tiers, SYMBOL, month, TODAY.date(), warm_days=10)
    return data


@pytest.fixture
def root(filled: Path, tmp_path: Path) -> Path:
    """A copy of the filled data root, this test's to change."""
    shutil.copytree(filled, tmp_path / "data")
    return tmp_path / "data"


def put_live(url: str, minutes: range) -> None:
    client = redis.Redis.from_url(url)
    for minute in minutes:
        price = Decimal(f"61000.{minute:02d}")
        candle = LiveCandle(SYMBOL, datetime_to_ms(TODAY) + minute * 60_000, price, price,
                            price, price, Decimal("2.5"), 7, 0, 0, 1, False, 0)
        client.hset(candle_key("binance", SYMBOL), str(candle.open_ms), encode_candle(candle))
    client.close()


def query(root: Path, redis_url: str | None = None) -> MarketDataQuery:
    return MarketDataQuery(root, redis_url=redis_url, clock_ms=lambda: NOW_MS,
                           start_date="2024-03-01", cache_ttl_s=0)


def test_one_call_spans_archive_daily_files_and_hot_tier_without_gap_or_duplicate(
        root: Path, redis_url: str) -> None:
    assert CandleStore(root).find(SYMBOL, Timeframe.M1, date(2024, 4, 23)) is None
    assert CandleStore(root).find(SYMBOL, Timeframe.M1, FIRST_WARM) is not None
    put_live(redis_url, range(30))
    frame = query(root, redis_url).ohlcv(SYMBOL, "1m", start=DAYS[0])
    assert len(frame) == len(DAYS) * 1440 + 30
    assert frame.index.is_unique
    assert set(frame.index.to_series().diff().dropna()) == {pd.Timedelta(minutes=1)}
    tiers = frame["tier"].astype(str)
    archived = (DAYS.index(FIRST_WARM)) * 1440
    assert tiers.tolist() == ["archive"] * archived + ["warm"] * (
        len(DAYS) * 1440 - archived) + ["hot"] * 30
    expected = pa.concat_tables([day_table(d, base=base(d)) for d in DAYS])
    assert frame["close"].iloc[:-30].tolist() == expected.column("close").to_pylist()  # exact
    assert frame["close"].iloc[-1] == Decimal("61000.29")


def test_stored_timeframes_and_aggregates_read_the_archive_too(root: Path) -> None:
    q = query(root)
    hours = q.ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY)
    assert len(hours) == len(DAYS) * 24
    assert set(hours["tier"].astype(str)) == {"archive", "warm"}
    half_days = q.ohlcv(SYMBOL, "12h", start=date(2024, 4, 23), end=date(2024, 4, 25))
    assert half_days["tier"].astype(str).tolist() == ["archive", "archive", "warm", "warm"]
    assert half_days["close"].iloc[1] == hours.loc["2024-04-23 23:00Z", "close"]
    last = q.ohlcv(SYMBOL, "1m", start=DAYS[0], end=TODAY, limit=3)
    assert len(last) == 3


def test_as_of_reads_an_archived_version_after_a_refetch_changed_the_day(tmp_path: Path) -> None:
    root = tmp_path / "data"  # its own root: the catalog names files by absolute path
    write_days(root, DAYS[:12])
    tiers = Tiers(CandleStore(root), CandleArchive(root / "archive"),
                  MetadataStore(root / "metadata.sqlite"), "binance")
    compact_month(tiers, SYMBOL, date(2024, 3, 1), TODAY.date(), warm_days=10)
    day = date(2024, 3, 10)  # its daily file was removed after archiving
    assert CandleStore(root).find(SYMBOL, Timeframe.M1, day) is None
    before = datetime.now(UTC)
    write_days(root, [day], bump=500)  # a re-fetch brings different candles
    q = query(root)
    start, end = datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC)
    now = q.ohlcv(SYMBOL, "1m", start=start, end=end)
    old = q.ohlcv(SYMBOL, "1m", start=start, end=end, as_of=before)
    assert set(now["tier"].astype(str)) == {"warm"}  # the new daily file wins over the archive
    assert now["close"].iloc[0] == Decimal(base(day, 500))
    assert old["close"].iloc[0] == Decimal(base(day))
    assert len(old) == len(now) == 1440
