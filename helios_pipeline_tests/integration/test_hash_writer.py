"""Hot-tier writers (``HashWriter``, live candles) against a real redis-server that goes down."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import cast

import pytest
import redis

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.storage.hot.hash_writer import HashWriter
from helios_pipeline.storage.hot.keys import indicator_key
from helios_pipeline.storage.hot.live_candles import HotCandleWriter, load_live_candles
from helios_pipeline.storage.hot.live_indicators import HotIndicatorWriter, load_live_indicators
from helios_pipeline_tests.conftest import RedisServer

TTL_MS = 60_000
LOG = logging.getLogger("helios_pipeline_tests.hash_writer")
WARNING = "Writing the test hash failed (%r); %s."


def fields_of(client: redis.Redis, key: str) -> dict[str, str]:
    raw = cast(dict[bytes, bytes], client.hgetall(key))
    return {k.decode(): v.decode() for k, v in raw.items()}


def ttl_ms(client: redis.Redis, key: str) -> int:
    ttl = client.pttl(key)
    assert isinstance(ttl, int)
    return ttl


@pytest.mark.parametrize("replace", [True, False])
def test_writes_every_hash_with_its_expiry_replacing_or_over_the_old(redis_url: str,
                                                                     replace: bool) -> None:
    async def main() -> tuple[bool, bool]:
        writer = HashWriter(redis_url, LOG, timeout_s=2.0, replace=replace)
        first = await writer.write({"a": {"x": "1", "y": "2"}, "b": {"z": "3"}}, TTL_MS, WARNING)
        second = await writer.write({"a": {"x": "4"}}, TTL_MS, WARNING)
        await writer.aclose()
        return first, second

    assert asyncio.run(main()) == (True, True)
    client = redis.Redis.from_url(redis_url)
    assert fields_of(client, "a") == ({"x": "4"} if replace else {"x": "4", "y": "2"})
    assert fields_of(client, "b") == {"z": "3"}
    for key in ("a", "b"):
        assert 0 < ttl_ms(client, key) <= TTL_MS
    client.close()


def test_an_outage_is_counted_and_logged_once_until_a_write_succeeds(
        redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == LOG.name]

    async def main() -> None:
        writer = HashWriter(redis_url, LOG, timeout_s=2.0, replace=True)
        assert await writer.write({"a": {"x": "1"}}, TTL_MS, WARNING, "before")
        redis_server.stop()
        try:
            assert not await writer.write({"a": {"x": "2"}}, TTL_MS, WARNING, "first outage")
            assert not await writer.write({"a": {"x": "3"}}, TTL_MS, WARNING, "first outage")
            assert writer.failures == 2
            assert len(warnings()) == 1
            redis_server.start()
            assert await writer.write({"a": {"x": "4"}}, TTL_MS, WARNING, "after")
            redis_server.stop()
            assert not await writer.write({"a": {"x": "5"}}, TTL_MS, WARNING, "second outage")
        finally:
            redis_server.start()
        assert writer.failures == 3
        await writer.aclose()

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        asyncio.run(main())
    logged = warnings()
    assert len(logged) == 2  # one per outage, not one per failed write
    assert logged[0].startswith("Writing the test hash failed (")
    assert logged[0].endswith("; first outage.")
    assert logged[1].endswith("; second outage.")


def test_indicator_writer_keeps_what_redis_did_not_take_for_the_next_flush(
        redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    logger = "helios_pipeline.storage.hot.live_indicators"

    async def main() -> tuple[int, int, int, int]:
        writer = HotIndicatorWriter(redis_url, "binance", TTL_MS)
        writer.add("BTC/USDT", "1m", 60_000, {"close": 1.5, "rsi": float("nan")})
        writer.add("ETH/USDT", "1m", 60_000, {"close": 2.5, "rsi": 50.25})
        redis_server.stop()
        try:
            failed = await writer.flush()
            kept = writer.pending
        finally:
            redis_server.start()
        written = await writer.flush()
        await writer.aclose()
        return failed, kept, written, writer.pending

    with caplog.at_level(logging.WARNING, logger=logger):
        assert asyncio.run(main()) == (0, 2, 2, 0)
    logged = [r.getMessage() for r in caplog.records if r.name == logger]
    assert len(logged) == 1
    assert logged[0].endswith("; keeping 2 for later.")
    client = redis.Redis.from_url(redis_url)
    live = load_live_indicators(client, "binance", "ETH/USDT", "1m")
    assert live is not None
    assert (live.open_ms, live.indicators) == (60_000, {"close": 2.5, "rsi": 50.25})
    assert 0 < ttl_ms(client, indicator_key("binance", "BTC/USDT", "1m")) <= TTL_MS
    client.close()


def test_candle_writer_keeps_its_candles_through_an_outage_and_warns_once(
        redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    logger = "helios_pipeline.storage.hot.live_candles"
    now_ms = time.time_ns() // 1_000_000
    minute = now_ms - now_ms % 60_000 - 60_000
    candle = LiveCandle("BTC/USDT", minute, *[Decimal("93576.12")] * 4, Decimal("0.5"), 3,
                        minute + 1, minute + 2, 1, False, now_ms)

    async def main() -> tuple[int, int, int, int, int]:
        writer = HotCandleWriter(redis_url, "binance", 3_600_000)
        writer.add([candle])
        redis_server.stop()
        try:
            failed = [await writer.flush(), await writer.flush()]  # one outage, two flushes
        finally:
            redis_server.start()
        written = await writer.flush()
        await writer.aclose()
        return failed[0] + failed[1], writer.failures, written, writer.pending, writer.written

    with caplog.at_level(logging.WARNING, logger=logger):
        assert asyncio.run(main()) == (0, 2, 1, 0, 1)
    logged = [r.getMessage() for r in caplog.records if r.name == logger]
    assert len(logged) == 1
    assert logged[0].endswith("; keeping 1 for later.")
    client = redis.Redis.from_url(redis_url)
    assert load_live_candles(client, "binance", "BTC/USDT") == [candle]
    client.close()
