"""Candle tables for the archive tests: exact decimals a float cannot hold."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyarrow as pa

from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import day_start_ms


def day_table(day: date, minutes: int = 1440, base: str = "60000.12345678") -> pa.Table:
    """A day of 1m candles with prices that a float cannot hold exactly."""
    start = day_start_ms(day)
    times = [start + 60_000 * i for i in range(minutes)]
    price = [str(Decimal(base) + Decimal(i) / Decimal(10**8)) for i in range(minutes)]
    dec = OHLCV_SCHEMA.field("open").type
    columns = {
        "timestamp": pa.array(times).cast(OHLCV_SCHEMA.field("timestamp").type),
        **{name: pa.array(price).cast(dec) for name in ("open", "high", "low", "close")},
        **{name: pa.array(["0.000000000000000001"] * minutes).cast(dec)
           for name in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")},
        "trades": pa.array([7] * minutes, pa.int64()),
        "close_time": pa.array([t + 59_999 for t in times], pa.int64()),
        "is_validated": pa.array([True] * minutes),
        "validation_score": pa.array([1.0] * minutes),
        "anomaly_flags": pa.array([["gap"]] * minutes, OHLCV_SCHEMA.field("anomaly_flags").type),
    }
    return pa.Table.from_arrays([columns[f.name] for f in OHLCV_SCHEMA], schema=OHLCV_SCHEMA)
