"""Warm start from daily files and Redis's live candles, then live updates, read back from Redis.

Two real days (the 10 h outage inside) are stored as daily 1m files, the next day's first half
hour is in Redis as live candles: that is what a restarted stream service finds. After the warm
start each new live candle must give the batch value over the stored candles plus the new ones
(1e-9 relative), and that is what Redis, ``MarketDataQuery.latest_indicators`` and the Dagster
resource then show.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import redis

from helios_pipeline.defs.realtime import RealtimeMarketDataResource
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.realtime.live_indicators import LiveIndicators, warm_start
from helios_pipeline.signals.frame import COLUMNS
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.hot.keys import candle_key, indicator_key
from helios_pipeline.storage.hot.live_candles import encode_candle
from helios_pipeline.storage.hot.live_indicators import (
    HotIndicatorWriter,
    LiveIndicatorValues,
    load_live_indicators,
)
from helios_pipeline_tests.conftest import free_port
from helios_pipeline_tests.unit.live_reference import (
    SYMBOL,
    aggregate,
    batch,
    decimal,
    live_candles,
    minutes,
)
from helios_pipeline_tests.unit.signals_reference import RTOL

TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.H1)
RETENTION_MS = 90 * MINUTE_MS
TOLERANCE_MS = 2_000


def store_days(data_dir: Path, frame: pd.DataFrame) -> None:
    store = CandleStore(data_dir)
    for day, rows in frame.groupby(frame.index.date):
        candles = [OHLCVData(SYMBOL, t.to_pydatetime(), Timeframe.M1, decimal(o), decimal(h),
                             decimal(lo), decimal(c), decimal(v), None, None)
                   for t, o, h, lo, c, v in rows[["open", "high", "low", "close", "volume"]]
                   .itertuples(name=None)]
        assert isinstance(day, date)
        store.store(SYMBOL, Timeframe.M1, day, candles)


def assert_close(live: LiveIndicatorValues | None, reference: pd.DataFrame, what: str) -> None:
    assert live is not None, what
    row = reference.iloc[-1]
    assert live.open_ms == reference.index[-1].value // 1_000_000, what
    for column in ("close", *COLUMNS):
        expected, got = float(row[column]), live.indicators[column]
        assert not math.isnan(expected), (what, column)  # past every warm-up here
        scale = float(row["close"]) if column.startswith("macd") else abs(expected)
        assert abs(got - expected) <= RTOL * scale, (what, column, got, expected)


def test_restart_warm_start_then_live_candles_equal_the_batch(tmp_path: Path,
                                                              redis_url: str) -> None:
    history = minutes("2019-05-14", "2019-05-16 01:05")
    split = pd.Timestamp("2019-05-16", tz="UTC")
    restart = pd.Timestamp("2019-05-16 00:30", tz="UTC")
    store_days(tmp_path, history[history.index < split])
    client = redis.Redis.from_url(redis_url)
    for candle in live_candles(history[(history.index >= split) & (history.index < restart)]):
        client.hset(candle_key("binance", SYMBOL), str(candle.open_ms), encode_candle(candle))
    now_ms = restart.value // 1_000_000 + 500  # 00:29 closed half a second ago
    # Every stored closed candle of each timeframe (the 00:00 hour is still open).
    before = history[history.index < restart]
    expected_fed = sum(len(aggregate(before, tf)) for tf in ("1m", "5m")) + len(
        aggregate(before[before.index < split], "1h"))

    async def main() -> list[tuple[str, pd.Timestamp, LiveIndicatorValues | None]]:
        writer = HotIndicatorWriter(redis_url, "binance", RETENTION_MS)
        indicators = LiveIndicators([SYMBOL], TIMEFRAMES, writer, TOLERANCE_MS)
        fed = await asyncio.to_thread(warm_start, indicators, tmp_path, redis_url, "binance",
                                      RETENTION_MS, now_ms, 5_000)
        assert fed == expected_fed
        seen = []
        await writer.flush()
        for tf in ("1m", "5m", "1h"):  # the warm start wrote the batch value over X
            seen.append((tf, restart, load_live_indicators(client, "binance", SYMBOL, tf)))
        for candle in live_candles(history[history.index >= restart]):  # X+1, X+2, ...
            indicators.on_candles([candle])
            indicators.finalize(candle.open_ms + MINUTE_MS + TOLERANCE_MS + 1)
            await writer.flush()
            stamp = pd.Timestamp(candle.open_ms + MINUTE_MS, unit="ms", tz="UTC")
            seen += [(tf, stamp, load_live_indicators(client, "binance", SYMBOL, tf))
                     for tf in ("1m", "5m", "1h")]
        await writer.aclose()
        return seen

    seen = asyncio.run(main())
    for timeframe, until, live in seen:
        reference = batch(history[history.index < until], timeframe)
        closed = Timeframe.parse(timeframe).ms
        reference = reference[reference.index + pd.Timedelta(milliseconds=closed) <= until]
        assert_close(live, reference, f"{timeframe} at {until}")
    last_hour = seen[-1][2]
    assert last_hour is not None  # the 00:00 hour closed with its last live minute
    assert last_hour.open_ms == pd.Timestamp("2019-05-16 00:00", tz="UTC").value // 1_000_000

    # The readers show the same hash.
    query = MarketDataQuery(tmp_path, redis_url=redis_url)
    frame = query.latest_indicators(SYMBOL, "5m")
    query.close()
    live_5m = load_live_indicators(client, "binance", SYMBOL, "5m")
    assert live_5m is not None
    assert list(frame.columns) == ["close", *COLUMNS]
    assert frame.index[0] == pd.Timestamp(live_5m.open_ms, unit="ms", tz="UTC")
    assert frame.iloc[0].to_dict() == live_5m.indicators
    resource = RealtimeMarketDataResource(redis_url=redis_url)
    assert resource.indicators(SYMBOL, "1h") == load_live_indicators(client, "binance", SYMBOL,
                                                                     "1h")
    assert resource.indicators(SYMBOL, "4h") is None
    # Values are plain decimal text that parses back to the very float computed.
    text = client.hget(indicator_key("binance", SYMBOL, "1m"), "rsi")
    assert isinstance(text, bytes)
    assert "e" not in text.decode().lower()
    assert Decimal(text.decode()) == Decimal(repr(float(text)))  # the shortest exact text
    client.close()


def test_warm_start_without_redis_uses_the_files_alone(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    history = minutes("2019-05-14", "2019-05-16")
    store_days(tmp_path, history)
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    now_ms = pd.Timestamp("2019-05-16 00:00:01", tz="UTC").value // 1_000_000
    indicators = LiveIndicators([SYMBOL, "ETH/USDT"], TIMEFRAMES,
                                HotIndicatorWriter(dead, "binance", RETENTION_MS), TOLERANCE_MS)
    with caplog.at_level(logging.WARNING):
        fed = warm_start(indicators, tmp_path, dead, "binance", RETENTION_MS, now_ms, 5_000)
    assert fed == sum(len(aggregate(history, tf)) for tf in ("1m", "5m", "1h"))
    warnings = [r for r in caplog.records if "files only" in r.getMessage()]
    assert len(warnings) == 1  # one failed try, not one per symbol
