"""Derived candles are exact aggregates of 1m candles and say when a bucket is partial."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.resample import PARTIAL_BUCKET, aggregate_candles
from helios_pipeline.domain.timeframe import Timeframe

START = datetime(2024, 1, 1, tzinfo=UTC)


def minute(i: int, o: str, h: str, low: str, c: str, v: str, trades: int | None = 1) -> OHLCVData:
    return OHLCVData(
        symbol="BTC/USDT", timestamp=START + timedelta(minutes=i), timeframe=Timeframe.M1,
        open=Decimal(o), high=Decimal(h), low=Decimal(low), close=Decimal(c), volume=Decimal(v),
        trades=trades, taker_buy_volume=Decimal("0.1"), quote_volume=Decimal("10.00000001"),
        taker_buy_quote_volume=Decimal("1"), is_validated=True,
    )


def test_five_minute_bucket_is_exact() -> None:
    candles = [
        minute(0, "100.00", "101.50", "99.90", "101.00", "0.00000001"),
        minute(1, "101.00", "103.20", "100.80", "102.00", "1.5"),
        minute(2, "102.00", "102.10", "98.70", "99.00", "2"),
        minute(3, "99.00", "100.00", "98.80", "99.50", "0.1"),
        minute(4, "99.50", "99.90", "99.10", "99.80", "0.2"),
    ]
    (bucket,) = aggregate_candles(candles, Timeframe.M5)
    assert bucket.timestamp == START
    assert bucket.timeframe is Timeframe.M5
    assert (bucket.open, bucket.high, bucket.low, bucket.close) == (
        Decimal("100.00"), Decimal("103.20"), Decimal("98.70"), Decimal("99.80"))
    assert bucket.volume == Decimal("3.80000001")
    assert bucket.quote_volume == Decimal("50.00000005")
    assert bucket.trades == 5
    assert bucket.close_time_ms == int(START.timestamp() * 1000) + 300_000 - 1
    assert bucket.anomaly_flags == ()
    assert bucket.is_validated


def test_partial_bucket_is_flagged_not_filled() -> None:
    candles = [minute(0, "1", "2", "1", "2", "1"), minute(7, "2", "3", "2", "3", "1")]
    first, second = aggregate_candles(candles, Timeframe.M5)
    assert first.anomaly_flags == (PARTIAL_BUCKET,)
    assert second.timestamp == START + timedelta(minutes=5)
    assert second.anomaly_flags == (PARTIAL_BUCKET,)
    assert first.volume == Decimal(1)


def test_unknown_trade_counts_stay_unknown() -> None:
    candles = [minute(0, "1", "1", "1", "1", "1"), minute(1, "1", "1", "1", "1", "1", trades=None)]
    (bucket,) = aggregate_candles(candles, Timeframe.M5)
    assert bucket.trades is None


def test_a_day_of_minutes_makes_one_daily_candle() -> None:
    candles = [minute(i, "10", "11", "9", "10", "1") for i in range(1440)]
    (day,) = aggregate_candles(candles, Timeframe.D1)
    assert day.volume == Decimal(1440)
    assert day.anomaly_flags == ()
    assert len(aggregate_candles(candles, Timeframe.H4)) == 6


def test_unsorted_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        aggregate_candles([minute(1, "1", "1", "1", "1", "1"), minute(0, "1", "1", "1", "1", "1")],
                          Timeframe.M5)
