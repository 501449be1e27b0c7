"""Real candles for the InfluxDB mirror tests and benchmark, optionally moved into its window.

InfluxDB keeps 30 days, so tests that need points to stay move Binance's recorded 2020-03-12
minutes (real prices, volumes and trade counts) to a recent day; only the open times change.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms, ms_to_datetime
from helios_pipeline_tests.conftest import KLINES_DIR

CRASH_DAY = KLINES_DIR / "BTCUSDT-1m-2020-03-12.csv"


def real_candles(shift_to: datetime | None = None) -> list[OHLCVData]:
    """Binance's 1m candles of 2020-03-12; with ``shift_to``, moved to start on that day."""
    with CRASH_DAY.open() as handle:
        rows = list(csv.reader(handle))
    offset = 0 if shift_to is None else datetime_to_ms(shift_to) - int(rows[0][0])
    return [
        OHLCVData(symbol="BTC/USDT", timestamp=ms_to_datetime(int(r[0]) + offset),
                  timeframe=Timeframe.M1, open=Decimal(r[1]), high=Decimal(r[2]),
                  low=Decimal(r[3]), close=Decimal(r[4]), volume=Decimal(r[5]),
                  quote_volume=Decimal(r[7]), trades=int(r[8]), taker_buy_volume=Decimal(r[9]),
                  taker_buy_quote_volume=Decimal(r[10]))
        for r in rows
    ]


def days_ago(days: int) -> datetime:
    """00:00 UTC of the day ``days`` before today."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def yesterday() -> datetime:
    """00:00 UTC of yesterday."""
    return days_ago(1)
