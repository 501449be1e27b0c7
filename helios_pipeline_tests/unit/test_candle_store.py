"""CandleStore: exact decimals, atomic idempotent writes, both formats, real files in tmp_path."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, Timeframe, day_start_ms
from helios_pipeline.storage.atomic import write_atomic, write_atomic_with
from helios_pipeline.storage.candles import (
    CandleStore,
    PartitionError,
    PartitionNotFoundError,
    PrecisionError,
)

DAY = date(2024, 1, 31)
SYMBOL = "BTC/USDT"
FORMATS = ["parquet", "csv"]
EXACT = ["0.00000001", "93576.00000000", "123456789012.12345678", "0.000000000000000001",
         "99999999999999999999.999999999999999999", "-42.5", "0"]


def candle(
    minute: int, day: date = DAY, timeframe: Timeframe = Timeframe.M1, **fields: Any
) -> OHLCVData:
    """A 1m candle ``minute`` minutes into ``day``; ``fields`` override the defaults."""
    opened = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)
    values: dict[str, Any] = {
        "symbol": SYMBOL, "timestamp": opened, "timeframe": timeframe,
        "open": Decimal("93576.00000000"), "high": Decimal("93600.10"), "low": Decimal("93500"),
        "close": Decimal("93550") + Decimal(minute).scaleb(-2), "volume": Decimal("1.23456789"),
        "trades": 100 + minute, "taker_buy_volume": Decimal("0.5"),
        "quote_volume": Decimal("115522.12345678"), "taker_buy_quote_volume": None,
        "close_time_ms": int(opened.timestamp() * 1000) + timeframe.ms - 1,
    }
    values.update(fields)
    return OHLCVData(**values)


def day_of(n: int, day: date = DAY) -> list[OHLCVData]:
    return [candle(i, day) for i in range(n)]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_every_digit(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    candles = [
        candle(i, open=Decimal(v), high=Decimal(v), low=Decimal(v), close=Decimal(v),
               volume=Decimal(v), taker_buy_quote_volume=Decimal(v))
        for i, v in enumerate(EXACT)
    ]
    stored = store.store(SYMBOL, Timeframe.M1, DAY, candles)

    loaded = store.load(SYMBOL, Timeframe.M1, DAY)

    assert loaded == candles
    for got, want in zip(loaded, EXACT, strict=True):
        assert got.open == Decimal(want)
        assert got.timestamp.tzinfo is not None
        assert got.timestamp.utcoffset() == timedelta(0)
    assert stored.rows == len(EXACT)
    assert stored.path.suffix == f".{fmt}"
    assert stored.content_hash == hashlib.sha256(stored.path.read_bytes()).hexdigest()


def test_csv_holds_the_exact_decimal_text_and_ms_timestamps(tmp_path: Path) -> None:
    store = CandleStore(tmp_path, "csv")
    candles = [candle(0, open=Decimal("0.00000001"), close=Decimal("123456789012.12345678"))]
    stored = store.store(SYMBOL, Timeframe.M1, DAY, candles)

    lines = stored.path.read_text().splitlines()

    assert lines[0] == ("timestamp,open,high,low,close,volume,quote_volume,trades,"
                        "taker_buy_volume,taker_buy_quote_volume,close_time,"
                        "is_validated,validation_score,anomaly_flags")
    assert lines[1] == (f"{day_start_ms(DAY)},0.00000001,93600.10,93500,123456789012.12345678,"
                        f"1.23456789,115522.12345678,100,0.5,,{day_start_ms(DAY) + 59_999},"
                        "false,1.0,")
    loaded = store.load(SYMBOL, Timeframe.M1, DAY)[0]
    assert str(loaded.open) == "1E-8"  # the same Decimal as Decimal("0.00000001"), exponent -8
    assert loaded.open.as_tuple() == Decimal("0.00000001").as_tuple()
    assert str(loaded.high) == "93600.10"


def test_parquet_schema_is_exact_and_utc(tmp_path: Path) -> None:
    stored = CandleStore(tmp_path).store(SYMBOL, Timeframe.M1, DAY, day_of(3))

    schema = pq.read_schema(stored.path)

    assert schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    for name in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
                 "taker_buy_quote_volume"):
        assert schema.field(name).type == pa.decimal128(38, 18)
    assert schema.field("trades").type == pa.int64()
    assert schema.field("close_time").type == pa.int64()
    assert schema.field("is_validated").type == pa.bool_()
    assert schema.field("validation_score").type == pa.float64()
    assert schema.field("anomaly_flags").type == pa.list_(pa.field("item", pa.string(), False))
    assert schema.field("trades").nullable
    assert not schema.field("open").nullable
    assert schema.remove_metadata().equals(OHLCV_SCHEMA)
    assert pq.read_metadata(stored.path).row_group(0).column(1).compression in ("SNAPPY", "ZSTD")


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_reads_either_format_whatever_the_store_writes(tmp_path: Path, fmt: str) -> None:
    other = "csv" if fmt == "parquet" else "parquet"
    CandleStore(tmp_path, fmt).store(SYMBOL, Timeframe.M1, DAY, day_of(4))  # type: ignore[arg-type]

    reader = CandleStore(tmp_path, other)  # type: ignore[arg-type]

    assert reader.load(SYMBOL, Timeframe.M1, DAY) == day_of(4)
    assert reader.load_table(SYMBOL, Timeframe.M1, DAY).schema.equals(OHLCV_SCHEMA)
    assert reader.find(SYMBOL, Timeframe.M1, DAY) == CandleStore(tmp_path, fmt).path(  # type: ignore[arg-type]
        SYMBOL, Timeframe.M1, DAY
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_exchange_qualified_partitions_are_separate(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    store.store(SYMBOL, Timeframe.M1, DAY, day_of(2), exchange="binance")
    store.store(SYMBOL, Timeframe.M1, DAY, day_of(5), exchange="kraken")

    assert len(store.load(SYMBOL, Timeframe.M1, DAY, exchange="binance")) == 2
    assert len(store.load(SYMBOL, Timeframe.M1, DAY, exchange="kraken")) == 5
    with pytest.raises(PartitionNotFoundError, match="BTC/USDT on 2024-01-31"):
        store.load(SYMBOL, Timeframe.M1, DAY)


# -- idempotency and atomicity --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_rewriting_the_same_candles_is_byte_identical_and_skipped(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path / "a", fmt)  # type: ignore[arg-type]
    first = store.store(SYMBOL, Timeframe.M1, DAY, day_of(60))
    before = first.path.read_bytes()
    mtime = first.path.stat().st_mtime_ns

    shuffled = day_of(60)
    random.Random(3).shuffle(shuffled)
    second = store.store(SYMBOL, Timeframe.M1, DAY, shuffled)
    elsewhere = CandleStore(tmp_path / "b", fmt).store(SYMBOL, Timeframe.M1, DAY, day_of(60))  # type: ignore[arg-type]

    assert first.changed
    assert not second.changed
    assert second.content_hash == first.content_hash
    assert first.path.read_bytes() == before
    assert first.path.stat().st_mtime_ns == mtime
    assert elsewhere.path.read_bytes() == before  # no wall-clock or path in the bytes
    assert no_temp_files(first.path.parent)


@pytest.mark.parametrize("fmt", FORMATS)
def test_changed_candles_rewrite_the_file(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    first = store.store(SYMBOL, Timeframe.M1, DAY, day_of(10))
    corrected = [*day_of(10)[:-1], candle(9, close=Decimal("1.5"))]

    second = store.store(SYMBOL, Timeframe.M1, DAY, corrected)

    assert second.changed
    assert second.content_hash != first.content_hash
    assert store.load(SYMBOL, Timeframe.M1, DAY)[-1].close == Decimal("1.5")


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    write_atomic(target, b"old content")

    def broken_writer(stream: BinaryIO) -> None:
        stream.write(b"half of the new")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic_with(target, broken_writer)

    assert target.read_bytes() == b"old content"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_atomic_write_creates_folders_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y" / "z.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert no_temp_files(target.parent)


@pytest.mark.parametrize("fmt", FORMATS)
def test_refused_store_leaves_the_stored_partition_intact(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    stored = store.store(SYMBOL, Timeframe.M1, DAY, day_of(5))
    before = stored.path.read_bytes()

    with pytest.raises(PrecisionError):
        store.store(SYMBOL, Timeframe.M1, DAY, [candle(0, low=Decimal("0." + "1" * 19))])

    assert stored.path.read_bytes() == before
    assert no_temp_files(stored.path.parent)


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_open_times_are_an_error_naming_symbol_day_and_time(
    tmp_path: Path, fmt: str
) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    candles = [candle(0), candle(7), candle(3), candle(7, close=Decimal("2"))]

    with pytest.raises(PartitionError) as caught:
        store.store(SYMBOL, Timeframe.M1, DAY, candles)

    message = str(caught.value)
    assert "BTC/USDT" in message
    assert "2024-01-31" in message
    assert "2024-01-31T00:07:00+00:00" in message
    assert store.find(SYMBOL, Timeframe.M1, DAY) is None


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("0.1234567890123456789", PrecisionError, "19 decimal places"),
        ("1.00000000000000000001", PrecisionError, "20 decimal places"),
        ("100000000000000000000", PrecisionError, "more than 20 integer digits"),
        ("NaN", PartitionError, "not a finite number"),
        ("Infinity", PartitionError, "not a finite number"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_values_that_would_lose_digits_raise_instead_of_rounding(
    tmp_path: Path, fmt: str, value: str, error: type[Exception], match: str
) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    bad = [candle(0), candle(1, volume=Decimal(value))]

    with pytest.raises(error, match=match) as caught:
        store.store(SYMBOL, Timeframe.M1, DAY, bad)

    assert "volume" in str(caught.value)
    assert "2024-01-31T00:01:00+00:00" in str(caught.value)
    assert store.find(SYMBOL, Timeframe.M1, DAY) is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_trailing_zeros_beyond_18_places_lose_nothing_and_are_accepted(
    tmp_path: Path, fmt: str
) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    value = Decimal("1.50000000000000000000000")
    store.store(SYMBOL, Timeframe.M1, DAY, [candle(0, open=value)])
    assert store.load(SYMBOL, Timeframe.M1, DAY)[0].open == Decimal("1.5")


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (candle(0, symbol="ETH/USDT"), "for 'ETH/USDT', not 'BTC/USDT'"),
        (candle(0, timeframe=Timeframe.M5), r"timeframe \['5m'\], not 1m"),
        (candle(0, day=DAY + timedelta(days=1)), "outside that UTC day"),
        (candle(-1), "outside that UTC day"),
        (candle(0, timestamp=datetime(2024, 1, 31, 0, 0, 30, tzinfo=UTC)), "not aligned"),
        (candle(0, timestamp=datetime(2024, 1, 31, 0, 1, 0, 500, tzinfo=UTC)), "not aligned"),
        (candle(0, timestamp=datetime(2024, 1, 31, 0, 1)), "Naive datetime"),  # noqa: DTZ001
        (candle(0, open=None), "open is missing"),
        (candle(0, trades=1.5), "trades=1.5 .* expected int"),
        (candle(0, high=93600.1), "expected Decimal"),
    ],
)
def test_candles_that_do_not_belong_to_the_partition_are_refused(
    tmp_path: Path, bad: OHLCVData, match: str
) -> None:
    with pytest.raises(PartitionError, match=match):
        CandleStore(tmp_path).store(SYMBOL, Timeframe.M1, DAY, [candle(5), bad])


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown storage format"):
        CandleStore(tmp_path, "json")  # type: ignore[arg-type]


def test_missing_day_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(PartitionNotFoundError, match="No 1m candles stored"):
        CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, DAY)
    with pytest.raises(FileNotFoundError):
        CandleStore(tmp_path).load_table(SYMBOL, Timeframe.M1, DAY)


# -- empty days, gaps, frames ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_day_is_recorded_as_a_valid_empty_file(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]

    stored = store.store(SYMBOL, Timeframe.M1, DAY, [])

    assert stored.path.is_file()
    assert stored.rows == 0
    assert (stored.first_ts_ms, stored.last_ts_ms) == (None, None)
    start = day_start_ms(DAY)
    assert stored.missing_ranges == ((start, start + DAY_MS - MINUTE_MS),)
    assert store.load(SYMBOL, Timeframe.M1, DAY) == []
    table = store.load_table(SYMBOL, Timeframe.M1, DAY)
    assert table.num_rows == 0
    assert table.schema.equals(OHLCV_SCHEMA)


def test_stored_partition_reports_its_gaps(tmp_path: Path) -> None:
    candles = [candle(i) for i in range(1440) if not 10 <= i <= 14 and i != 1439]
    stored = CandleStore(tmp_path).store(SYMBOL, Timeframe.M1, DAY, candles)
    start = day_start_ms(DAY)
    assert stored.missing_ranges == (
        (start + 10 * MINUTE_MS, start + 14 * MINUTE_MS),
        (start + 1439 * MINUTE_MS, start + 1439 * MINUTE_MS),
    )
    full = CandleStore(tmp_path).store(SYMBOL, Timeframe.M1, DAY, day_of(1440))
    assert full.missing_ranges == ()
    assert (full.first_ts_ms, full.last_ts_ms) == (start, start + 1439 * MINUTE_MS)


def test_load_frame_spans_days_and_skips_missing_ones(tmp_path: Path) -> None:
    parquet = CandleStore(tmp_path, "parquet")
    parquet.store(SYMBOL, Timeframe.M1, DAY - timedelta(days=1), day_of(3, DAY - timedelta(days=1)))
    CandleStore(tmp_path, "csv").store(SYMBOL, Timeframe.M1, DAY + timedelta(days=1),
                                       day_of(2, DAY + timedelta(days=1)))

    frame = parquet.load_frame(SYMBOL, Timeframe.M1, DAY - timedelta(days=2),
                               DAY + timedelta(days=2))

    assert len(frame) == 5
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert frame.index.is_monotonic_increasing
    assert frame.index[0] == pd.Timestamp("2024-01-30T00:00:00Z")
    assert frame.index[-1] == pd.Timestamp("2024-02-01T00:01:00Z")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "quote_volume",
                                   "trades", "taker_buy_volume", "taker_buy_quote_volume",
                                   "close_time", "is_validated", "validation_score",
                                   "anomaly_flags"]
    assert frame["close"].iloc[1] == Decimal("93550.01")
    assert isinstance(frame["close"].iloc[1], Decimal)
    assert frame["taker_buy_quote_volume"].isna().all()
    assert str(frame["trades"].dtype) == "Int64"
    assert frame["trades"].tolist() == [100, 101, 102, 100, 101]


def test_load_frame_as_float_gives_the_nearest_doubles(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    candles = [candle(i, close=Decimal(v)) for i, v in enumerate(EXACT)]
    store.store(SYMBOL, Timeframe.M1, DAY, candles)

    frame = store.load_frame(SYMBOL, Timeframe.M1, DAY, DAY, as_float=True)

    assert frame["close"].dtype == "float64"
    assert frame["close"].tolist() == [float(Decimal(v)) for v in EXACT]


def test_load_frame_with_no_files_is_empty_but_typed(tmp_path: Path) -> None:
    frame = CandleStore(tmp_path).load_frame(SYMBOL, Timeframe.M1, DAY, DAY + timedelta(days=3))
    assert frame.empty
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"
    assert "close" in frame.columns


# -- property: every representable candle round-trips exactly -------------------------------------

MONEY = st.integers(min_value=0, max_value=18).flatmap(
    lambda places: st.decimals(
        min_value=Decimal("-99999999999999999999"), max_value=Decimal("99999999999999999999"),
        places=places, allow_nan=False, allow_infinity=False,
    )
)
ROW = st.tuples(MONEY, MONEY, MONEY, MONEY, MONEY, st.none() | MONEY,
                st.none() | st.integers(min_value=0, max_value=2**63 - 1),
                st.none() | MONEY, st.none() | MONEY, st.none() | st.integers(0, 2**53))


def candles_from(minutes: Sequence[int], rows: Sequence[tuple[Any, ...]]) -> list[OHLCVData]:
    return [
        candle(m, open=o, high=h, low=lo, close=c, volume=v, quote_volume=qv, trades=n,
               taker_buy_volume=tbv, taker_buy_quote_volume=tbqv, close_time_ms=ct)
        for m, (o, h, lo, c, v, qv, n, tbv, tbqv, ct) in zip(minutes, rows, strict=True)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(st.tuples(st.integers(0, 1439), ROW), max_size=20,
                  unique_by=lambda pair: pair[0]),
    fmt=st.sampled_from(FORMATS),
)
def test_property_round_trip_is_exact(
    tmp_path_factory: pytest.TempPathFactory, data: list[tuple[int, tuple[Any, ...]]], fmt: str
) -> None:
    store = CandleStore(tmp_path_factory.mktemp("prop"), fmt)  # type: ignore[arg-type]
    candles = candles_from([m for m, _ in data], [row for _, row in data])

    first = store.store(SYMBOL, Timeframe.M1, DAY, candles)
    again = store.store(SYMBOL, Timeframe.M1, DAY, list(reversed(candles)))

    assert store.load(SYMBOL, Timeframe.M1, DAY) == sorted(candles, key=lambda c: c.timestamp)
    assert not again.changed
    assert again.content_hash == first.content_hash


# -- validation outcome columns -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_validation_outcome_round_trips(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    candles = [
        candle(0, is_validated=True, validation_score=1.0),
        candle(1, is_validated=True, validation_score=0.5,
               anomaly_flags=("price_jump_after_gap", "volume_outlier")),
        candle(2),
    ]
    store.store(SYMBOL, Timeframe.M1, DAY, candles)

    assert store.load(SYMBOL, Timeframe.M1, DAY) == candles
    frame = store.load_frame(SYMBOL, Timeframe.M1, DAY, DAY)
    assert frame["is_validated"].tolist() == [True, True, False]
    assert frame["validation_score"].tolist() == [1.0, 0.5, 1.0]
    assert [list(flags) for flags in frame["anomaly_flags"]] == [
        [], ["price_jump_after_gap", "volume_outlier"], []]


def test_csv_joins_flags_with_semicolons(tmp_path: Path) -> None:
    flagged = candle(0, is_validated=True, validation_score=0.75, anomaly_flags=("volume_outlier",
                                                                                 "stale"))
    stored = CandleStore(tmp_path, "csv").store(SYMBOL, Timeframe.M1, DAY, [flagged])
    assert stored.path.read_text().splitlines()[1].endswith(",true,0.75,volume_outlier;stale")


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_written_before_validation_columns_still_load(tmp_path: Path, fmt: str) -> None:
    store = CandleStore(tmp_path, fmt)  # type: ignore[arg-type]
    stored = store.store(SYMBOL, Timeframe.M1, DAY, day_of(3))
    old_columns = list(OHLCV_SCHEMA.names[:11])
    if fmt == "parquet":
        pq.write_table(pq.read_table(stored.path).select(old_columns), stored.path)
    else:
        lines = [",".join(line.split(",")[:11]) for line in stored.path.read_text().splitlines()]
        stored.path.write_text("\n".join(lines) + "\n")

    assert store.load(SYMBOL, Timeframe.M1, DAY) == day_of(3)
    assert store.load_table(SYMBOL, Timeframe.M1, DAY).schema.equals(OHLCV_SCHEMA)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"validation_score": 1.5}, "validation_score=1.5"),
        ({"validation_score": 1}, "validation_score=1 "),
        ({"is_validated": 1}, "is_validated=1"),
        ({"anomaly_flags": ("a;b",)}, "anomaly_flags"),
        ({"anomaly_flags": ("",)}, "anomaly_flags"),
    ],
)
def test_malformed_validation_outcomes_are_refused(
    tmp_path: Path, fields: dict[str, Any], match: str
) -> None:
    with pytest.raises(PartitionError, match=match):
        CandleStore(tmp_path).store(SYMBOL, Timeframe.M1, DAY, [candle(0, **fields)])


def test_a_nan_score_is_refused_wherever_it_is(tmp_path: Path) -> None:
    candles = [candle(0, validation_score=0.5), candle(1, validation_score=float("nan"))]
    with pytest.raises(PartitionError, match="validation_score=nan at 2024-01-31T00:01"):
        CandleStore(tmp_path).store(SYMBOL, Timeframe.M1, DAY, candles)
