"""Arbitrary JSON-like input never crashes validation: a quarantine record or a typed error."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.frames import FrameInputError, validate_candle_frame
from helios_pipeline.validation.outcome import (
    quarantine_raw,
    validate_candles,
    validate_kline_rows,
)
from helios_pipeline.validation.rules import HARD_RULES, Rule

T0 = 1_707_523_200_000
NOW = T0 + 86_400_000
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.decimals() | st.sampled_from(["93576.01", "1e400", "-0", "NaN", "0x10", " 7 "]))
JSON_LIKE = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)
GOOD = ["100.5", "101", "99.5", "100.25", "12.5", T0 + MINUTE_MS - 1, "1250", 42, "6", "600", "0"]


@st.composite
def kline_rows(draw: st.DrawFn) -> list[Any]:
    """Rows that are mostly kline-shaped with some fields (or the whole row) replaced."""
    rows: list[Any] = []
    for minute in range(draw(st.integers(0, 25))):
        shape = draw(st.sampled_from(["good", "field", "field", "truncated", "anything"]))
        row: Any = [T0 + minute * MINUTE_MS, *GOOD]
        if shape == "field":
            row[draw(st.integers(0, 11))] = draw(JSON_LIKE)
        elif shape == "truncated":
            row = row[: draw(st.integers(0, 13))]
        elif shape == "anything":
            row = draw(JSON_LIKE)
        rows.append(row)
    return rows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=kline_rows())
def test_arbitrary_kline_rows_are_accepted_or_quarantined_with_reasons(rows: list[Any]) -> None:
    outcome = validate_kline_rows(rows, "BTC/USDT", Timeframe.M1, now_ms=NOW, source="fuzz")

    assert len(outcome.accepted) + len(outcome.quarantined) == len(rows)
    for candle in outcome.accepted:
        assert candle.is_validated
        prices = (candle.open, candle.high, candle.low, candle.close)
        assert all(isinstance(p, Decimal) and p.is_finite() and p > 0 for p in prices)
        assert candle.volume >= 0
        assert candle.validation_score > 0
    for record in outcome.quarantined:
        assert record.rules
        assert set(record.rules) & HARD_RULES
        assert QuarantineRecord.from_json(record.to_json()) == record
        json.loads(record.to_json())  # strict JSON: no NaN, no Infinity


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON_LIKE)
def test_a_payload_that_is_not_a_list_is_one_malformed_row(payload: Any) -> None:
    if isinstance(payload, list):
        return
    outcome = validate_kline_rows(payload, "BTC/USDT", Timeframe.M1, now_ms=NOW)
    assert outcome.accepted == []
    assert [r.rules for r in outcome.quarantined] == [(Rule.MALFORMED_ROW,)]


VALUE = st.none() | st.decimals() | st.sampled_from(
    [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-5"), Decimal("0"),
     Decimal("1e30"), Decimal("100"), Decimal("100.5"), "abc", 1.5, float("nan")])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.tuples(st.integers(-3, 30), VALUE, VALUE, VALUE, VALUE, VALUE, VALUE,
                                 st.integers(0, 999_999)), max_size=25))
def test_candles_holding_anything_validate_without_crashing(
    tmp_path_factory: pytest.TempPathFactory, values: list[tuple[Any, ...]]
) -> None:
    start = datetime(2024, 2, 10, tzinfo=UTC)
    candles = [
        OHLCVData("BTC/USDT", start + timedelta(minutes=m, microseconds=us % 3 * 500),
                  Timeframe.M1, o, h, lo, c, v, None, tb)
        for m, o, h, lo, c, v, tb, us in values
    ]
    outcome = validate_candles(candles, "BTC/USDT", Timeframe.M1, now_ms=NOW, source="fuzz")

    assert len(outcome.accepted) + len(outcome.quarantined) == len(candles)
    for candle in outcome.accepted:
        assert math.isfinite(float(candle.close))
        assert candle.close > 0
    store = QuarantineStore(tmp_path_factory.mktemp("q"))
    store.store_partition("BTC/USDT", Timeframe.M1, start.date(), outcome.quarantined)
    assert store.load_partition("BTC/USDT", Timeframe.M1, start.date()) == [
        QuarantineRecord.from_json(r.to_json()) for r in outcome.quarantined]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.dictionaries(
    st.sampled_from(["timestamp", "open", "high", "low", "close", "volume", "taker_buy_volume"]),
    st.lists(SCALARS, min_size=3, max_size=3), min_size=1))
def test_frames_of_anything_validate_or_raise_a_typed_error(columns: dict[str, list[Any]]) -> None:
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in
                          columns.items()})
    try:
        result = validate_candle_frame(frame, Timeframe.M1, now_ms=NOW)
    except FrameInputError as exc:
        error: FrameInputError | None = exc
    else:
        error = None
        assert len(result) == 3
        assert set(result.columns) == {"hard_rules", "soft_rules", "validation_score"}
    assert error is None or "timestamp" in str(error) or "column" in str(error)


def test_quarantine_raw_keeps_what_json_cannot_hold(tmp_path: Path) -> None:
    raw = [T0, float("nan"), Decimal("1.5"), float("inf"), {1: (2, 3)}, object, 2**5000]
    record = quarantine_raw(raw, Rule.MALFORMED_ROW, "fuzz", symbol="BTC/USDT", kind="ohlcv_1m",
                            detail="has 7 fields")
    assert record.raw[:4] == [T0, "nan", "1.5", "inf"]
    assert record.raw[4] == {"1": [2, 3]}
    assert record.raw[5] == "<class 'object'>"
    assert record.raw[6] == "<int of 5001 bits>"
    assert record.values == {"malformed_row": "has 7 fields"}  # noqa: PD011 - not pandas
    assert QuarantineRecord.from_json(record.to_json()) == record
