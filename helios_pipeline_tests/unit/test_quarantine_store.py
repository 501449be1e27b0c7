"""QuarantineStore: JSON Lines partitions replaced atomically, live files appended, real files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.quarantine import QuarantineRecord, jsonable
from helios_pipeline.domain.timeframe import Timeframe, day_start_ms
from helios_pipeline.storage.paths import (
    quarantine_live_path,
    quarantine_month_dir,
    quarantine_ohlcv_path,
)
from helios_pipeline.storage.quarantine import QuarantineFileError, QuarantineStore
from helios_pipeline.validation.outcome import validate_candles
from helios_pipeline.validation.rules import Rule

DAY = date(2024, 1, 31)
SYMBOL = "BTC/USDT"
MOMENT = datetime(2024, 2, 1, 3, 0, tzinfo=UTC)


def record(minute: int, rules: tuple[str, ...] = (Rule.PRICE_JUMP,), day: date = DAY,
           detected: datetime = MOMENT) -> QuarantineRecord:
    ts = day_start_ms(day) + minute * 60_000
    return QuarantineRecord.create(
        SYMBOL, "ohlcv_1m", ts, rules, {"close": Decimal("300.5"), rules[0]: "jump=2.0 > 0.2"},
        [ts, "100", "300.5", "99", "300.5", "1"], "binance@http://127.0.0.1:1", detected)


def test_paths_follow_the_layout(tmp_path: Path) -> None:
    assert quarantine_ohlcv_path(tmp_path, SYMBOL, Timeframe.M1, DAY) == (
        tmp_path / "quarantine" / "BTCUSDT" / "2024" / "01" / "ohlcv_1m_20240131.jsonl")
    assert quarantine_live_path(tmp_path, SYMBOL, DAY, exchange="binance") == (
        tmp_path / "quarantine" / "binance.BTCUSDT" / "2024" / "01" / "live_20240131.jsonl")
    assert quarantine_month_dir(tmp_path, "eth/usdt", DAY) == (
        tmp_path / "quarantine" / "ETHUSDT" / "2024" / "01")


def test_store_partition_writes_one_json_line_per_record(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path)
    path = store.store_partition(SYMBOL, Timeframe.M1, DAY, [record(5), record(9)])

    assert path == quarantine_ohlcv_path(tmp_path, SYMBOL, Timeframe.M1, DAY)
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 2
    assert first["rules"] == ["price_jump"]
    assert first["values"] == {"close": "300.5", "price_jump": "jump=2.0 > 0.2"}
    assert first["timestamp_ms"] == day_start_ms(DAY) + 5 * 60_000
    assert first["detected_at"] == "2024-02-01T03:00:00+00:00"
    assert first["raw"][2] == "300.5"
    assert store.load_partition(SYMBOL, Timeframe.M1, DAY) == [record(5), record(9)]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_rematerialising_replaces_and_never_duplicates(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path)
    path = store.store_partition(SYMBOL, Timeframe.M1, DAY, [record(5), record(9)])
    assert path is not None
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns

    later = MOMENT + timedelta(days=1)
    store.store_partition(SYMBOL, Timeframe.M1, DAY, [record(5, detected=later),
                                                      record(9, detected=later)])
    assert path.read_bytes() == before  # same records: bytes (and detection times) kept
    assert path.stat().st_mtime_ns == mtime

    store.store_partition(SYMBOL, Timeframe.M1, DAY, [record(7, (Rule.NOT_A_NUMBER,))])
    assert [r.timestamp_ms for r in store.load_partition(SYMBOL, Timeframe.M1, DAY)] == [
        day_start_ms(DAY) + 7 * 60_000]

    assert store.store_partition(SYMBOL, Timeframe.M1, DAY, []) is None
    assert not path.exists()
    assert store.load_partition(SYMBOL, Timeframe.M1, DAY) == []


def test_append_adds_live_records_per_day_and_load_spans_days(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path)
    next_day = DAY + timedelta(days=1)
    store.store_partition(SYMBOL, Timeframe.M1, DAY, [record(1)])
    paths = store.append([record(3, (Rule.STALE,)), record(4, day=next_day)])
    store.append([record(8, (Rule.FUTURE_TIMESTAMP,))])

    assert paths == [quarantine_live_path(tmp_path, SYMBOL, DAY),
                     quarantine_live_path(tmp_path, SYMBOL, next_day)]
    assert len(paths[0].read_text().splitlines()) == 2
    loaded = store.load(SYMBOL, DAY, next_day)
    assert [(r.rules[0], r.timestamp_ms) for r in loaded] == [
        ("stale", day_start_ms(DAY) + 3 * 60_000),  # live_ sorts before ohlcv_
        ("future_timestamp", day_start_ms(DAY) + 8 * 60_000),
        ("price_jump", day_start_ms(DAY) + 60_000),
        ("price_jump", day_start_ms(next_day) + 4 * 60_000),
    ]
    assert store.count(SYMBOL, DAY, DAY) == 3
    assert store.count(SYMBOL, next_day, next_day + timedelta(days=5)) == 1
    assert store.count("ETH/USDT", DAY, next_day) == 0


def test_a_record_without_a_time_is_filed_under_its_detection_day(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path)
    undated = QuarantineRecord.create(SYMBOL, "ohlcv_1m", None, (Rule.MALFORMED_ROW,), {}, "junk",
                                      "test", MOMENT)
    store.append([undated], exchange="binance")
    assert store.load(SYMBOL, MOMENT.date(), MOMENT.date(), exchange="binance") == [undated]
    assert store.load(SYMBOL, MOMENT.date(), MOMENT.date()) == []


def test_a_corrupt_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path)
    path = store.store_partition(SYMBOL, Timeframe.M1, DAY, [record(1)])
    assert path is not None
    with path.open("ab") as stream:
        stream.write(b'{"symbol": "BTC/US')
    with pytest.raises(QuarantineFileError, match=r"ohlcv_1m_20240131\.jsonl:2"):
        store.load_partition(SYMBOL, Timeframe.M1, DAY)
    path.write_bytes(b'{"a": 1}\n')
    with pytest.raises(QuarantineFileError, match=":1: not a quarantine record"):
        store.load(SYMBOL, DAY, DAY)


def test_jsonable_turns_anything_into_strict_json() -> None:
    value = {"d": Decimal("1.10"), "nan": float("nan"), "t": (1, [2, {3: None}]),
             "when": MOMENT, "tf": Timeframe.M5, "bytes": b"\x00"}
    converted = jsonable(value)
    assert converted == {"d": "1.10", "nan": "nan", "t": [1, [2, {"3": None}]],
                         "when": "2024-02-01T03:00:00+00:00", "tf": "5m", "bytes": "b'\\x00'"}
    json.dumps(converted, allow_nan=False)
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    kept = jsonable(deep)
    for _ in range(32):
        (kept,) = kept
    assert kept == repr([[[[1]]]]).replace("[[[[1]]]]", "[" * 68 + "1" + "]" * 68)


def test_validated_candles_become_records_with_the_offending_values(tmp_path: Path) -> None:
    opened = datetime(2024, 1, 31, 10, 0, tzinfo=UTC)
    bad = OHLCVData(SYMBOL, opened, Timeframe.M1, Decimal(100), Decimal(99), Decimal(98),
                    Decimal(100), Decimal("-1"), 5, None)
    outcome = validate_candles([bad], SYMBOL, Timeframe.M1, now_ms=day_start_ms(DAY) * 2,
                               source="test")
    (quarantined,) = outcome.quarantined
    assert quarantined.rules == (Rule.OHLC_INCONSISTENT, Rule.NEGATIVE_VOLUME)
    assert quarantined.values["high"] == "99"
    assert quarantined.values["volume"] == "-1"
    assert quarantined.raw["timestamp"] == "2024-01-31T10:00:00+00:00"
    assert quarantined.raw["timeframe"] == "1m"
    QuarantineStore(tmp_path).store_partition(SYMBOL, Timeframe.M1, DAY, outcome.quarantined)
    assert QuarantineStore(tmp_path).count(SYMBOL, DAY, DAY) == 1
