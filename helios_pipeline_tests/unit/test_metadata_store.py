"""MetadataStore: markets, configs and the versioned partition catalog in a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from helios_pipeline.domain.models import Market, OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, day_start_ms
from helios_pipeline.storage.candles import CandleStore, StoredPartition
from helios_pipeline.storage.catalog_rows import ArchiveRecord
from helios_pipeline.storage.metadata import SCHEMA_VERSION, JsonValue, MetadataError, MetadataStore

DAY = date(2024, 1, 31)
T0 = datetime(2024, 2, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable UTC clock, so that timestamps in the catalog can be asserted exactly."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def meta(tmp_path: Path, clock: Clock) -> MetadataStore:
    return MetadataStore(tmp_path / "meta" / "metadata.sqlite", clock=clock)


def market(symbol: str = "BTC/USDT", **fields: object) -> Market:
    base, quote = symbol.split("/")
    values: dict[str, object] = {
        "exchange": "binance", "symbol": symbol, "exchange_symbol": base + quote, "base": base,
        "quote": quote, "active": True, "tick_size": Decimal("0.01"),
        "lot_size": Decimal("0.00000001"), "min_qty": Decimal("0.00001000"),
        "max_qty": Decimal("9000.00000000"), "min_notional": Decimal("5"),
    }
    values.update(fields)
    return Market(**values)  # type: ignore[arg-type]


def stored(content_hash: str, rows: int = 1440, ranges: tuple[tuple[int, int], ...] = ()) -> (
    StoredPartition
):
    start = day_start_ms(DAY)
    return StoredPartition(
        path=Path(f"/data/{content_hash}.parquet"), rows=rows, content_hash=content_hash,
        changed=True, first_ts_ms=start, last_ts_ms=start + 1439 * MINUTE_MS,
        missing_ranges=ranges,
    )


# -- schema ---------------------------------------------------------------------------------------


def test_first_open_creates_schema_in_wal_mode(meta: MetadataStore) -> None:
    assert meta.path.is_file()
    assert meta.schema_version() == SCHEMA_VERSION == 3
    with sqlite3.connect(meta.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "markets", "configs", "partitions"} <= tables


def test_a_version_1_catalog_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    meta = MetadataStore(path)
    meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("a"), "t")
    with sqlite3.connect(path) as conn:  # what version 1 looked like: no quarantined column
        conn.execute("ALTER TABLE partitions DROP COLUMN quarantined")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-11-01T00:00:00+00:00')")
    migrated = MetadataStore(path)
    assert migrated.schema_version() == SCHEMA_VERSION
    record = migrated.latest_partition("binance", "BTC/USDT", Timeframe.M1, DAY)
    assert record is not None
    assert (record.content_hash, record.quarantined) == ("a", 0)
    again = migrated.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("b"),
                                      "t", quarantined=2)
    assert (again.version, again.quarantined) == (2, 2)


def test_reopening_keeps_data_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    MetadataStore(path).store_config("k", 1)
    assert MetadataStore(path).load_config("k") == 1
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00+00:00')")
    with pytest.raises(MetadataError, match="schema version 99"):
        MetadataStore(path)


# -- markets --------------------------------------------------------------------------------------


def test_markets_round_trip_exactly(meta: MetadataStore) -> None:
    btc = market()
    eth = market("ETH/USDT", tick_size=None, max_qty=Decimal("123456789012.123456789012345678"))
    meta.store_markets([eth, btc, market(exchange="kraken")])

    loaded = meta.load_markets("binance")

    assert loaded == [btc, eth]
    assert str(loaded[0].lot_size) == str(Decimal("0.00000001"))
    assert str(loaded[0].min_qty) == "0.00001000"
    assert loaded[1].tick_size is None
    assert loaded[1].max_qty == Decimal("123456789012.123456789012345678")
    with sqlite3.connect(meta.path) as conn:
        row = conn.execute(
            "SELECT lot_size, typeof(lot_size) FROM markets WHERE symbol = 'BTC/USDT' "
            "AND exchange = 'binance'"
        ).fetchone()
    assert row == ("0.00000001", "text")


def test_markets_upsert_by_exchange_and_symbol(meta: MetadataStore) -> None:
    meta.store_markets([market()])
    changed = market(active=False, tick_size=Decimal("0.10"))

    assert meta.store_markets([changed]) == 1

    assert meta.load_markets("binance") == [changed]
    assert meta.load_market("binance", "BTC/USDT") == changed
    assert meta.load_market("binance", "DOGE/USDT") is None
    assert meta.load_market("kraken", "BTC/USDT") is None


def test_non_finite_trading_rules_are_refused(meta: MetadataStore) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        meta.store_markets([market(tick_size=Decimal("NaN"))])
    assert meta.load_markets("binance") == []


# -- configs --------------------------------------------------------------------------------------


def test_configs_round_trip_with_their_update_time(meta: MetadataStore, clock: Clock) -> None:
    value: dict[str, JsonValue] = {
        "grid": {"levels": 20, "spacing": "0.5"}, "symbols": ["BTC/USDT"], "on": True,
    }
    meta.store_config("grid.btc", value)
    clock.advance(5)
    meta.store_config("grid.btc", {**value, "on": False})

    entry = meta.load_config_entry("grid.btc")

    assert entry is not None
    assert entry.value == {**value, "on": False}
    assert entry.updated_at == T0 + timedelta(minutes=5)
    assert meta.load_config("grid.btc") == {**value, "on": False}
    assert meta.load_config("missing") is None
    assert meta.load_config("missing", default=[1]) == [1]
    assert meta.load_config_entry("missing") is None


def test_configs_that_json_cannot_hold_are_refused(meta: MetadataStore) -> None:
    with pytest.raises(TypeError):
        meta.store_config("price", Decimal("1.5"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JSON"):
        meta.store_config("nan", float("nan"))
    assert meta.load_config("price") is None


# -- partition catalog ----------------------------------------------------------------------------


def test_same_hash_keeps_the_version_and_touches_it(meta: MetadataStore, clock: Clock) -> None:
    first = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("aaa"),
                                  source="binance@http://127.0.0.1:8081")
    clock.advance(60)
    again = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("aaa"),
                                  source="replay")

    assert first.version == again.version == 1
    assert again.written_at == first.written_at == T0
    assert again.last_verified_at == T0 + timedelta(minutes=60)
    assert again.source == "binance@http://127.0.0.1:8081"  # the version's origin is kept
    assert len(meta.partition_history("binance", "BTC/USDT", Timeframe.M1, DAY)) == 1


def test_new_hash_adds_a_version_and_history_is_traceable(
    meta: MetadataStore, clock: Clock
) -> None:
    meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("aaa"), "replay")
    clock.advance(10)
    second = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("bbb"),
                                   "binance@http://127.0.0.1:8081")
    clock.advance(10)
    back = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("aaa"),
                                 "replay")

    history = meta.partition_history("binance", "BTC/USDT", Timeframe.M1, DAY)

    assert second.version == 2
    assert back.version == 3  # back to old bytes is still a change from the latest
    assert [(r.version, r.content_hash, r.source) for r in history] == [
        (1, "aaa", "replay"), (2, "bbb", "binance@http://127.0.0.1:8081"), (3, "aaa", "replay"),
    ]
    assert [r.written_at for r in history] == [T0, T0 + timedelta(minutes=10),
                                               T0 + timedelta(minutes=20)]
    latest = meta.latest_partition("binance", "BTC/USDT", Timeframe.M1, DAY)
    assert latest == back
    assert meta.latest_partition("binance", "BTC/USDT", Timeframe.M5, DAY) is None


def test_catalog_records_counts_and_gaps(meta: MetadataStore) -> None:
    start = day_start_ms(DAY)
    gaps = ((start + 10 * MINUTE_MS, start + 14 * MINUTE_MS), (start, start))
    one_minute = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY,
                                       stored("m1", rows=1434, ranges=gaps), "replay")
    five_gaps = ((start, start + 10 * MINUTE_MS),)  # three 5m candles missing: 00:00, 00:05, 00:10
    five_minute = meta.record_partition("binance", "BTC/USDT", Timeframe.M5, DAY,
                                        stored("m5", rows=285, ranges=five_gaps), "replay")

    assert one_minute.missing_minutes == 6
    assert one_minute.missing_ranges == gaps
    assert one_minute.rows == 1434
    assert one_minute.path == Path("/data/m1.parquet")
    assert (one_minute.first_ts_ms, one_minute.last_ts_ms) == (start, start + 1439 * MINUTE_MS)
    assert five_minute.missing_minutes == 15
    assert five_minute.timeframe is Timeframe.M5


def test_catalog_of_real_writes_including_an_empty_day(tmp_path: Path, meta: MetadataStore) -> None:
    store = CandleStore(tmp_path / "data")
    opened = datetime(2024, 1, 31, tzinfo=UTC)
    candles = [
        OHLCVData("BTC/USDT", opened + timedelta(minutes=m), Timeframe.M1, Decimal(1), Decimal(2),
                  Decimal("0.5"), Decimal("1.5"), Decimal(10), 3, None)
        for m in range(1440) if m != 100
    ]
    full = store.store("BTC/USDT", Timeframe.M1, DAY, candles)
    empty = store.store("BTC/USDT", Timeframe.M1, DAY + timedelta(days=1), [])

    day_one = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, full, "replay")
    day_two = meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY + timedelta(days=1),
                                    empty, "replay")

    assert day_one.missing_minutes == 1
    assert day_one.missing_ranges == ((day_start_ms(DAY) + 100 * MINUTE_MS,) * 2,)
    assert day_one.content_hash == full.content_hash
    assert day_one.path == full.path
    assert day_two.rows == 0
    assert (day_two.first_ts_ms, day_two.last_ts_ms) == (None, None)
    assert day_two.missing_minutes == 1440


def test_list_partitions_gives_latest_versions_filtered(meta: MetadataStore) -> None:
    for offset in range(3):
        day = DAY + timedelta(days=offset)
        meta.record_partition("binance", "BTC/USDT", Timeframe.M1, day, stored(f"a{offset}"), "r")
        meta.record_partition("binance", "ETH/USDT", Timeframe.M1, day, stored(f"e{offset}"), "r")
    meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("a0-v2"), "r")
    meta.record_partition("binance", "BTC/USDT", Timeframe.H1, DAY, stored("h"), "r")
    meta.record_partition("kraken", "BTC/USDT", Timeframe.M1, DAY, stored("k"), "r")

    everything = meta.list_partitions()
    btc_1m = meta.list_partitions(exchange="binance", symbol="BTC/USDT", timeframe=Timeframe.M1)
    window = meta.list_partitions(exchange="binance", start=DAY + timedelta(days=1),
                                  end=DAY + timedelta(days=1))

    assert len(everything) == 8
    assert [(r.day, r.version, r.content_hash) for r in btc_1m] == [
        (DAY, 2, "a0-v2"), (DAY + timedelta(days=1), 1, "a1"), (DAY + timedelta(days=2), 1, "a2"),
    ]
    assert [(r.symbol, r.content_hash) for r in window] == [("BTC/USDT", "a1"), ("ETH/USDT", "e1")]
    assert meta.list_partitions(exchange="bybit") == []


def test_concurrent_writers_get_distinct_consecutive_versions(meta: MetadataStore) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            meta.record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored(f"h{n}"), "r")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    history = meta.partition_history("binance", "BTC/USDT", Timeframe.M1, DAY)
    assert [r.version for r in history] == list(range(1, 9))
    assert len({r.content_hash for r in history}) == 8


def test_a_version_2_catalog_gains_the_archive_table(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    MetadataStore(path).record_partition("binance", "BTC/USDT", Timeframe.M1, DAY, stored("a"),
                                         "t")
    with sqlite3.connect(path) as conn:  # what version 2 looked like: no archive_months
        conn.execute("DROP TABLE archive_months")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version VALUES (2, '2026-11-01T00:00:00+00:00')")
    migrated = MetadataStore(path)
    assert migrated.schema_version() == SCHEMA_VERSION == 3
    month = DAY.replace(day=1)
    first = ArchiveRecord("binance", "BTC/USDT", Timeframe.M1, month, 1440, (DAY,), "h1", "p",
                          datetime(2026, 12, 1, tzinfo=UTC), daily_removed=(DAY,))
    migrated.record_archive(first)
    # A later run over the same month (say with one more day) keeps the removed days listed.
    later = replace(first, rows=2880, content_hash="h2", daily_removed=())
    migrated.record_archive(later)
    (record,) = migrated.archive_months("binance", "BTC/USDT", Timeframe.M1)
    assert (record.rows, record.content_hash, record.daily_removed) == (2880, "h2", (DAY,))
    assert migrated.archive_months("okx") == []
    assert migrated.latest_partition("binance", "BTC/USDT", Timeframe.M1, DAY) is not None
