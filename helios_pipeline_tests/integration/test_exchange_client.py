"""The real ExchangeClient (ccxt over HTTP) against the simulated Binance exchange, with faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, datetime_to_ms
from helios_pipeline.exchanges.breaker import CircuitBreaker, CircuitState
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.errors import (
    CircuitOpenError,
    ExchangeBannedError,
    ExchangeDataError,
    ExchangeUnavailableError,
    UnknownSymbolError,
)
from helios_pipeline.exchanges.retry import RetryPolicy
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer

T = TypeVar("T")
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)
JAN1 = datetime_to_ms(datetime(2024, 1, 1, tzinfo=UTC))
DAY = 1440 * MINUTE_MS


def run(
    sim: SimExchangeServer,
    body: Callable[[ExchangeClient], Awaitable[T]],
    **options: Any,
) -> tuple[T, ExchangeClient]:
    """Run ``body`` with a fresh client for ``sim``; return its result and the (closed) client."""
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("timeout_s", 2.0)

    async def main() -> tuple[T, ExchangeClient]:
        async with ExchangeClient("binance", base_url=sim.base_url, **options) as client:
            return await body(client), client

    return asyncio.run(main())


def expect_error(
    sim: SimExchangeServer,
    error: type[BaseException],
    body: Callable[[ExchangeClient], Awaitable[object]],
    **options: Any,
) -> tuple[BaseException, ExchangeClient]:
    """Run ``body`` and return the error it raised (which must be an ``error``)."""
    holder: dict[str, ExchangeClient] = {}

    async def wrapped(client: ExchangeClient) -> BaseException:
        holder["client"] = client
        with pytest.raises(error) as info:
            await body(client)
        return info.value

    raised, _ = run(sim, wrapped, **options)
    return raised, holder["client"]


def requests_seen(sim: SimExchangeServer) -> int:
    """Requests the simulated exchange has received so far."""
    return int(sim.stats()["total_requests"])


@pytest.fixture
def fresh_sim() -> Iterator[SimExchangeServer]:
    """A private simulated exchange, for tests that leave state behind (bans, limits)."""
    with SimExchangeServer(port=0, weight_limit=1200) as server:
        yield server


def test_three_days_paginate_into_contiguous_unique_candles(sim: SimExchangeServer) -> None:
    candles, client = run(
        sim, lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 3 * DAY),
        max_in_flight=2,
    )
    opens = [datetime_to_ms(c.timestamp) for c in candles]
    assert len(candles) == 4320
    assert opens == list(range(JAN1, JAN1 + 3 * DAY, MINUTE_MS))
    health = client.health()
    assert health["requests_sent"] == 1 + 5  # exchangeInfo + ceil(4320 / 1000) kline chunks
    assert health["retries"] == 0
    first = candles[0]
    assert isinstance(first.open, Decimal)
    assert first.trades is not None
    assert first.taker_buy_volume is not None
    assert first.quote_volume is not None
    assert first.close_time_ms == JAN1 + MINUTE_MS - 1
    assert {c.symbol for c in candles} == {"BTC/USDT"}


def test_concurrency_is_bounded_by_max_in_flight(sim: SimExchangeServer) -> None:
    sim.set_faults("latency:ms=150,path=klines")
    candles, client = run(
        sim, lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 3 * DAY),
        max_in_flight=2,
    )
    assert len(candles) == 4320
    assert client.health()["peak_in_flight"] == 2


def test_storage_id_symbols_are_accepted_and_hourly_candles_align(sim: SimExchangeServer) -> None:
    candles, _ = run(sim, lambda c: c.fetch_ohlcv("BTCUSDT", Timeframe.H1, JAN1 + 1, JAN1 + DAY))
    opens = [datetime_to_ms(c.timestamp) for c in candles]
    assert opens == list(range(JAN1 + 3_600_000, JAN1 + DAY, 3_600_000))


def test_429_waits_retry_after_and_retries_once(sim: SimExchangeServer) -> None:
    async def body(client: ExchangeClient) -> tuple[int, float]:
        await client.load_markets()
        sim.set_faults("http429:count=1,retry_after=1,path=klines")
        started = time.monotonic()
        candles = await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 60 * MINUTE_MS)
        return len(candles), time.monotonic() - started

    (count, elapsed), client = run(sim, body)
    assert count == 60
    assert elapsed >= 1.0
    assert client.health()["retries"] == 1
    assert client.limiter.snapshot()["waits"] == 1
    assert client.breaker.snapshot()["consecutive_failures"] == 0  # a 429 is not an outage


def test_two_5xx_are_retried_then_succeed(sim: SimExchangeServer) -> None:
    sim.set_faults("http5xx:count=2,path=klines")
    candles, client = run(
        sim, lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 10 * MINUTE_MS)
    )
    assert len(candles) == 10
    assert client.health()["retries"] == 2
    assert client.health()["failures"] == 2
    assert client.breaker.state is CircuitState.CLOSED


def test_timeouts_are_retried(sim: SimExchangeServer) -> None:
    sim.set_faults("timeout:count=1,seconds=2,path=klines")
    started = time.monotonic()
    candles, client = run(
        sim, lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 10 * MINUTE_MS),
        timeout_s=0.3,
    )
    assert len(candles) == 10
    assert client.health()["retries"] == 1
    assert time.monotonic() - started < 1.9  # the slow answer was not waited for


def test_breaker_opens_on_persistent_5xx_and_recovers_after_the_window(
    sim: SimExchangeServer,
) -> None:
    breaker = CircuitBreaker("binance", failure_threshold=3, recovery_s=0.5, long_recovery_s=5.0)
    window = (JAN1, JAN1 + 10 * MINUTE_MS)

    async def body(client: ExchangeClient) -> list[Any]:
        await client.load_markets()
        sim.set_faults("http5xx:path=klines")
        with pytest.raises(ExchangeUnavailableError, match="circuit breaker opened") as first:
            await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, *window)
        assert breaker.state is CircuitState.OPEN
        assert breaker.snapshot()["consecutive_failures"] == 3
        sent = client.health()["requests_sent"]
        with pytest.raises(CircuitOpenError, match="binance circuit is open since"):
            await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, *window)
        assert client.health()["requests_sent"] == sent  # failed fast, nothing sent
        sim.set_faults("")
        await asyncio.sleep(0.55)
        assert breaker.state is CircuitState.HALF_OPEN
        candles = await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, *window)
        return [first.value, candles]

    (error, candles), _ = run(sim, body, breaker=breaker)
    assert "failed after 3 attempt(s)" in str(error)
    assert len(candles) == 10
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot()["trips"] == 0


def test_ban_raises_and_no_further_request_reaches_the_exchange(
    fresh_sim: SimExchangeServer,
) -> None:
    async def body(client: ExchangeClient) -> int:
        await client.load_markets()
        fresh_sim.set_faults("ban:count=1,retry_after=60")
        with pytest.raises(ExchangeBannedError, match="banned this IP until"):
            await client.fetch_ticker("BTC/USDT")
        after_ban = requests_seen(fresh_sim)
        for _ in range(3):
            with pytest.raises(ExchangeBannedError):
                await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 10 * MINUTE_MS)
        with pytest.raises(ExchangeBannedError):
            await client.fetch_tickers(["BTC/USDT", "ETH/USDT"])
        return requests_seen(fresh_sim) - after_ban

    extra, client = run(fresh_sim, body)
    assert extra == 0
    assert client.health()["retries"] == 0
    banned_until = client.limiter.snapshot()["banned_until_ms"]
    assert banned_until is not None
    assert 55_000 <= banned_until - time.time() * 1000 <= 60_000


def test_malformed_klines_end_in_a_clear_data_error_after_retries(sim: SimExchangeServer) -> None:
    sim.set_faults("malformed:count=10,path=klines")
    error, client = expect_error(
        sim, ExchangeDataError,
        lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 10 * MINUTE_MS),
    )
    message = str(error)
    assert "klines" in message
    assert "BTCUSDT" in message
    assert "after 5 attempt(s)" in message
    assert "Payload starts:" in message
    assert client.health()["retries"] == 4


def test_truncated_payload_is_retried_then_succeeds(sim: SimExchangeServer) -> None:
    sim.set_faults("truncated:count=1,path=klines")
    candles, client = run(
        sim, lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 30 * MINUTE_MS)
    )
    assert len(candles) == 30
    assert client.health()["retries"] == 1


def test_missing_minutes_are_absent_not_invented(sim: SimExchangeServer) -> None:
    sim.set_faults("missing:symbol=BTCUSDT,start=2024-01-02T10:00,minutes=30")
    candles, _ = run(sim, lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1 + DAY,
                                                  JAN1 + 2 * DAY))
    gap_start = JAN1 + DAY + 600 * MINUTE_MS
    opens = {datetime_to_ms(c.timestamp) for c in candles}
    assert len(candles) == 1440 - 30
    assert not opens & set(range(gap_start, gap_start + 30 * MINUTE_MS, MINUTE_MS))
    assert gap_start - MINUTE_MS in opens
    assert gap_start + 30 * MINUTE_MS in opens


def test_unknown_symbol_lists_close_matches_without_requesting_klines(
    sim: SimExchangeServer,
) -> None:
    error, client = expect_error(
        sim, UnknownSymbolError, lambda c: c.fetch_ohlcv("BTC/USDX", Timeframe.M1, JAN1, JAN1 + DAY)
    )
    assert "Unknown symbol 'BTC/USDX' on binance" in str(error)
    assert isinstance(error, UnknownSymbolError)
    assert "BTC/USDT" in error.suggestions
    assert client.health()["requests_sent"] == 1  # exchangeInfo only


def test_the_still_open_candle_is_dropped(sim: SimExchangeServer) -> None:
    now_s = time.time()
    now_ms = int(now_s * 1000)
    current_open = now_ms - now_ms % MINUTE_MS
    candles, _ = run(
        sim,
        lambda c: c.fetch_ohlcv("BTC/USDT", Timeframe.M1, current_open - 5 * MINUTE_MS,
                                current_open + 10 * MINUTE_MS),
        clock=lambda: now_s,
    )
    opens = [datetime_to_ms(c.timestamp) for c in candles]
    assert opens == list(range(current_open - 5 * MINUTE_MS, current_open, MINUTE_MS))


def test_used_weight_header_and_exchange_limits_reach_the_limiter(
    fresh_sim: SimExchangeServer,
) -> None:
    async def body(client: ExchangeClient) -> dict[str, Any]:
        await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, JAN1, JAN1 + 10 * MINUTE_MS)
        return client.limiter.snapshot()

    snapshot, _ = run(fresh_sim, body)
    assert snapshot["weight_limit"] == 1200  # from exchangeInfo rateLimits
    assert snapshot["budget"] == 960
    # exchangeInfo (20) + one klines request (2), unless a minute boundary fell in between
    assert snapshot["observed_weight"] in (2, 22)
    assert snapshot["sent_since_observed"] == 0


def test_markets_and_tickers_are_exact(sim: SimExchangeServer) -> None:
    async def body(client: ExchangeClient) -> tuple[Any, Any, Any]:
        markets = await client.load_markets()
        return markets, await client.fetch_tickers(["BTC/USDT", "ETH/USDT"]), (
            await client.fetch_ticker("ETHUSDT")
        )

    (markets, tickers, single), _ = run(sim, body)
    btc = next(m for m in markets if m.symbol == "BTC/USDT")
    assert btc.exchange_symbol == "BTCUSDT"
    assert isinstance(btc.tick_size, Decimal)
    assert btc.tick_size > 0
    assert isinstance(btc.min_notional, Decimal)
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    for point in [*tickers.values(), single]:
        assert isinstance(point.bid, Decimal)
        assert point.bid < point.ask
        assert point.spread == point.ask - point.bid
        assert point.source == "binance"
    assert single.symbol == "ETH/USDT"


def test_from_settings_uses_the_exchange_url(sim: SimExchangeServer) -> None:
    settings = Settings(exchange_url=sim.base_url, max_in_flight=3, request_timeout_s=2.0)

    async def body() -> int:
        async with ExchangeClient.from_config(settings.exchange_config()) as client:
            return len(await client.load_markets())

    assert asyncio.run(body()) >= 2
