"""Shared helpers of the live indicator tests: real candles as live candles, batch references."""

from __future__ import annotations

import functools
from decimal import Decimal

import pandas as pd

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import MINUTE_MS
from helios_pipeline.realtime.indicator_series import Update
from helios_pipeline.signals.frame import COLUMNS, indicator_frame
from helios_pipeline_tests.unit.signals_reference import assert_matches, real_candles

SYMBOL = "BTC/USDT"
# May 2019: the 10 h exchange outage on the 15th (02:59 - 13:00 UTC) is inside these days.
MONTH = "BTCUSDT-1m-2019-05.csv.xz"


@functools.cache
def _month() -> pd.DataFrame:
    return real_candles(MONTH)


def minutes(start: str, end: str) -> pd.DataFrame:
    """Real 1m candles (float columns) with open times in ``[start, end)``."""
    frame = _month()
    return frame[(frame.index >= pd.Timestamp(start, tz="UTC"))
                 & (frame.index < pd.Timestamp(end, tz="UTC"))]


def open_ms(stamp: pd.Timestamp) -> int:
    """Open time in ms epoch."""
    return int(stamp.value // 1_000_000)


def decimal(value: float) -> Decimal:
    """The float's shortest text as a Decimal (what an exchange would have sent)."""
    return Decimal(repr(float(value)))


def live_candles(frame: pd.DataFrame) -> list[LiveCandle]:
    """``frame``'s candles as the stream service emits them when their minutes close."""
    return [live_candle(open_ms(stamp), *prices) for stamp, *prices in frame[
        ["open", "high", "low", "close", "volume"]].itertuples(name=None)]


def live_candle(opened: int, open_: float, high: float, low: float, close: float,
                volume: float, version: int = 1) -> LiveCandle:
    """One live candle (``version`` > 1: an amended one)."""
    return LiveCandle(SYMBOL, opened, decimal(open_), decimal(high), decimal(low), decimal(close),
                      decimal(volume), 10, opened, opened + MINUTE_MS - 1, version, version > 1,
                      opened + MINUTE_MS, True)


def aggregate(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """1m candles -> ``timeframe`` ones (buckets without a minute have no candle)."""
    if timeframe == "1m":
        return frame
    rule = {"5m": "5min", "1h": "1h"}[timeframe]
    out = frame.resample(rule).agg({"high": "max", "low": "min", "close": "last"})
    return out.dropna()


def batch(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Batch indicators of ``frame``'s 1m candles aggregated to ``timeframe`` (plus ``close``)."""
    candles = aggregate(frame, timeframe)
    table = indicator_frame(candles)
    table.insert(0, "close", candles["close"])
    return table


def assert_updates_match(updates: list[Update], reference: pd.DataFrame) -> None:
    """Live values at each candle equal the batch ones (1e-9 relative) at the same open times."""
    assert [u.open_ms for u in updates] == [open_ms(t) for t in reference.index]
    for column in ("close", *COLUMNS):
        scale = float(reference["close"].median()) if column.startswith("macd") else 0.0
        assert_matches([u.indicators[column] if column != "close" else float(u.close)
                        for u in updates], reference[column], scale)
