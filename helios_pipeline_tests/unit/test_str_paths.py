"""Public constructors take a ``str`` path as well as a ``Path`` (what a notebook user types)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore

DAY = date(2024, 1, 31)


def test_candle_store_reads_and_writes_under_a_str_root(tmp_path: Path) -> None:
    candle = OHLCVData("BTC/USDT", datetime(2024, 1, 31, tzinfo=UTC), Timeframe.M1,
                       Decimal("1.5"), Decimal("2"), Decimal("1"), Decimal("1.75"),
                       Decimal("3.25"), 7, Decimal("1"))
    store = CandleStore(str(tmp_path))
    stored = store.store("BTC/USDT", Timeframe.M1, DAY, [candle])
    assert stored.path.is_relative_to(tmp_path)
    [loaded] = CandleStore(str(tmp_path)).load("BTC/USDT", Timeframe.M1, DAY)
    assert (loaded.close, loaded.volume) == (Decimal("1.75"), Decimal("3.25"))


def test_catalog_quarantine_and_log_take_str_paths(tmp_path: Path) -> None:
    catalog = MetadataStore(str(tmp_path / "metadata.sqlite"))
    assert catalog.list_partitions() == []
    record = QuarantineRecord.create("BTC/USDT", "ohlcv_1m", 1706659200000, ["price_jump"],
                                     {"close": "9"}, {}, "test")
    quarantine = QuarantineStore(str(tmp_path))
    quarantine.store_partition("BTC/USDT", Timeframe.M1, DAY, [record])
    assert [r.rules for r in quarantine.load("BTC/USDT", DAY, DAY)] == [("price_jump",)]
    with WriteAheadLog(str(tmp_path / "wal")) as wal:
        assert wal.append([b"one"]) == 1
        assert wal.folder == tmp_path / "wal"
