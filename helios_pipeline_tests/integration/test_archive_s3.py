"""The cold tier on an S3-compatible object store: moto's standalone server on localhost."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa

from helios_pipeline.batch.archive import Tiers, compact_month
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms, days_between
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.settings import Settings
from helios_pipeline.storage.archive import CandleArchive, table_hash
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.archive_data import day_table
from helios_pipeline_tests.conftest import S3Server

SYMBOL = "BTC/USDT"
MAY = days_between(date(2024, 5, 1), date(2024, 5, 31))
_buckets = itertools.count()


def bucket(s3_server: S3Server) -> str:
    return s3_server.bucket_url(f"helios-{next(_buckets)}")


def test_write_read_and_list_a_month_on_s3(s3_server: S3Server) -> None:
    archive = CandleArchive(bucket(s3_server))
    table = pa.concat_tables([day_table(d) for d in MAY[:3]])
    written = archive.write_month("binance", SYMBOL, Timeframe.M1, MAY[0], table,
                                  dict.fromkeys(MAY[:3], "h"))
    assert written.path.startswith("helios-")
    back = archive.read_month("binance", SYMBOL, Timeframe.M1, MAY[0])
    assert back is not None
    assert table_hash(back) == table_hash(table) == written.content_hash
    assert back.column("volume")[0].as_py() == Decimal("0.000000000000000001")
    assert archive.months("binance", SYMBOL) == [date(2024, 5, 1)]
    assert archive.archived_days("binance", SYMBOL, Timeframe.M1) == set(MAY[:3])
    assert archive.read_month("binance", SYMBOL, Timeframe.M1, date(2024, 6, 1)) is None


def test_compaction_to_s3_verifies_before_trimming_and_the_query_reads_it_back(
        s3_server: S3Server, tmp_path: Path) -> None:
    root, url = tmp_path / "data", bucket(s3_server)
    store, writes = CandleStore(root), []
    for day in MAY:
        stored = store.store_table(SYMBOL, Timeframe.M1, day, day_table(day))
        writes.append(PartitionWrite("binance", SYMBOL, Timeframe.M1, day, stored, "test"))
    MetadataStore(root / "metadata.sqlite").record_partitions(writes)
    expected = pa.concat_tables([store.load_table(SYMBOL, Timeframe.M1, d) for d in MAY])
    tiers = Tiers(store, CandleArchive(url), MetadataStore(root / "metadata.sqlite"), "binance")
    (done,) = compact_month(tiers, SYMBOL, MAY[0], date(2024, 7, 10), warm_days=30)
    assert done.archived.content_hash == table_hash(expected)
    assert len(done.removed) == 31  # May 31 is 40 days before July 10
    assert not (root / "market_data").exists() or not any(
        (root / "market_data").rglob("ohlcv_1m_*.parquet"))
    settings = Settings(data_dir=root, archive_url=url, start_date="2024-05-01")
    query = MarketDataQuery.from_settings(
        settings, redis_url=None,
        clock_ms=lambda: datetime_to_ms(datetime(2024, 7, 10, tzinfo=UTC)))
    frame = query.ohlcv(SYMBOL, "1m", start=MAY[0], end=date(2024, 6, 1))
    assert len(frame) == 31 * 1440
    assert set(frame["tier"].astype(str)) == {"archive"}
    assert frame["close"].tolist() == expected.column("close").to_pylist()
    assert frame.index[0] == pd.Timestamp("2024-05-01", tz="UTC")
