"""`helios stream` keeps live indicators in Redis that equal the batch over Redis's live candles.

Real parts: the CLI as a subprocess, the simulated exchange's websockets, a real redis-server.
Before the start, Redis holds four hours of live 1m candles (real Binance minutes moved to just
before now), as a restarted service would find them: the service warm-starts from them, then
builds candles from the simulator's trades on the real clock (the CLI has no clock warp), so the
test runs until a minute built from streamed trades is final: 60 - 125 s.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import redis

from helios_pipeline.domain.timeframe import MINUTE_MS
from helios_pipeline.signals.frame import COLUMNS
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
from helios_pipeline.storage.hot.keys import candle_key
from helios_pipeline.storage.hot.live_candles import encode_candle, load_live_candles
from helios_pipeline.storage.hot.live_indicators import LiveIndicatorValues, load_live_indicators
from helios_pipeline_tests.conftest import REPO_ROOT
from helios_pipeline_tests.unit.live_reference import SYMBOL, batch, live_candles, minutes
from helios_pipeline_tests.unit.signals_reference import RTOL

SEEDED_MINUTES = 240
LIMIT_S = 180.0


@pytest.fixture(scope="module")
def exchange() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, ws_config=WsConfig(trades_per_second=5.0)) as sim:
        yield sim


def seed(client: redis.Redis, before_ms: int) -> None:
    """Real minutes as live candles, the last one opening a minute before ``before_ms``."""
    real = live_candles(minutes("2019-05-16 04:00", "2019-05-16 12:00").iloc[:SEEDED_MINUTES])
    shift = before_ms - MINUTE_MS - real[-1].open_ms
    for candle in real:
        moved = replace(candle, open_ms=candle.open_ms + shift,
                        first_trade_ms=candle.first_trade_ms + shift,
                        last_trade_ms=candle.last_trade_ms + shift,
                        emitted_ms=candle.emitted_ms + shift)
        client.hset(candle_key("binance", SYMBOL), str(moved.open_ms), encode_candle(moved))


def redis_frame(client: redis.Redis) -> pd.DataFrame:
    """Every live candle Redis holds, as float columns on the open time."""
    candles = load_live_candles(client, "binance", SYMBOL)
    index = pd.DatetimeIndex([pd.Timestamp(c.open_ms, unit="ms", tz="UTC") for c in candles])
    return pd.DataFrame({"high": [float(c.high) for c in candles],
                         "low": [float(c.low) for c in candles],
                         "close": [float(c.close) for c in candles]}, index=index)


def assert_batch_equal(live: LiveIndicatorValues | None, frame: pd.DataFrame,
                       timeframe: str, length_ms: int) -> None:
    assert live is not None, timeframe
    until = pd.Timestamp(live.open_ms + length_ms, unit="ms", tz="UTC")
    reference = batch(frame[frame.index < until], timeframe)
    row = reference.iloc[-1]
    assert reference.index[-1] == pd.Timestamp(live.open_ms, unit="ms", tz="UTC"), timeframe
    for column in ("close", *COLUMNS):
        expected, got = float(row[column]), live.indicators[column]
        assert not math.isnan(expected), (timeframe, column)
        scale = float(row["close"]) if column.startswith("macd") else abs(expected)
        assert abs(got - expected) <= RTOL * scale, (timeframe, column, got, expected)


def test_helios_stream_writes_live_indicators_equal_to_the_batch(
        exchange: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    started_ms = time.time_ns() // 1_000_000
    start_minute = started_ms - started_ms % MINUTE_MS
    seed(client, start_minute)
    env = {**os.environ, "HELIOS_EXCHANGE_URL": exchange.base_url, "HELIOS_REDIS_URL": redis_url,
           "HELIOS_DATA_DIR": str(tmp_path / "data"), "HELIOS_HOT_RETENTION_MINUTES": "600"}
    out_path = tmp_path / "stream.out"
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "helios_pipeline.cli", "stream", "--symbols", SYMBOL,
             "--kinds", "trade", "--duration", str(LIMIT_S), "--status-every", "60"],
            env=env, cwd=REPO_ROOT, stdout=out, stderr=out)
    # The first minute wholly built from streamed trades, final (2 s tolerance) and written.
    wanted = start_minute + MINUTE_MS
    deadline = time.monotonic() + LIMIT_S
    latest = None
    while time.monotonic() < deadline and process.poll() is None:
        latest = load_live_indicators(client, "binance", SYMBOL, "1m")
        if latest is not None and latest.open_ms >= wanted:
            break
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    code = process.wait(60)
    output = out_path.read_text()
    assert code == 0, output
    assert latest is not None, output
    assert latest.open_ms >= wanted, (latest, output)

    frame = redis_frame(client)
    streamed = frame[frame.index >= pd.Timestamp(start_minute, unit="ms", tz="UTC")]
    assert len(streamed) >= 1  # candles built from the simulator's trades
    for timeframe, length in (("1m", MINUTE_MS), ("5m", 5 * MINUTE_MS)):
        assert_batch_equal(load_live_indicators(client, "binance", SYMBOL, timeframe), frame,
                           timeframe, length)
    hour = load_live_indicators(client, "binance", SYMBOL, "1h")  # too short a history to be
    assert hour is not None  # warm: its candle is the last closed hour of the candles
    hours = frame.resample("1h").agg({"close": "last"}).dropna()
    closed = hours[hours.index + pd.Timedelta(hours=1) <= pd.Timestamp(
        latest.open_ms + MINUTE_MS, unit="ms", tz="UTC")]
    assert hour.open_ms == closed.index[-1].value // 1_000_000
    assert hour.indicators["close"] == float(closed["close"].iloc[-1])
    client.close()
