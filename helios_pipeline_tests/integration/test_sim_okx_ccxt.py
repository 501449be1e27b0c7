"""The real ccxt okx client and ExchangeClient("okx") against the simulated OKX exchange."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt.async_support as ccxt
import pytest

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, Timeframe, datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.errors import UnknownSymbolError
from helios_pipeline.exchanges.retry import RetryPolicy
from helios_pipeline.sim.server import SimExchangeServer

T = TypeVar("T")
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)
DAY = datetime_to_ms(datetime(2024, 3, 1, tzinfo=UTC))
TICKER_NOW = datetime_to_ms(datetime(2024, 3, 5, 12, 30, 15, tzinfo=UTC))


@pytest.fixture(scope="module")
def okx_server() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, venue="okx") as server:
        yield server


@pytest.fixture
def okx(okx_server: SimExchangeServer) -> Iterator[SimExchangeServer]:
    okx_server.set_faults("")
    okx_server.reset()
    yield okx_server
    okx_server.set_faults("")


def ccxt_okx(sim: SimExchangeServer, **config: Any) -> Any:
    exchange = ccxt.okx({"options": {"fetchMarkets": {"types": ["spot"]}}, **config})
    exchange.urls["api"]["rest"] = sim.api_url
    return exchange


def run_ccxt(sim: SimExchangeServer, body: Callable[[Any], Awaitable[T]], **config: Any) -> T:
    """Run ``body(exchange)`` with a fresh ccxt okx pointed at ``sim``."""
    async def main() -> T:
        exchange = ccxt_okx(sim, **config)
        try:
            return await body(exchange)
        finally:
            await exchange.close()

    return asyncio.run(main())


def run_client(sim: SimExchangeServer, body: Callable[[ExchangeClient], Awaitable[T]],
               exchange: str = "okx", **options: Any) -> tuple[T, ExchangeClient]:
    """Run ``body`` with a fresh ExchangeClient for ``sim``; return the result and the client."""
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("timeout_s", 5.0)

    async def main() -> tuple[T, ExchangeClient]:
        async with ExchangeClient(exchange, base_url=sim.base_url, **options) as client:
            return await body(client), client

    return asyncio.run(main())


def day_candles(sim: SimExchangeServer, symbol: str = "BTC/USDT", day: int = DAY,
                exchange: str = "okx") -> list[Any]:
    async def body(client: ExchangeClient) -> list[Any]:
        return await client.fetch_ohlcv(symbol, Timeframe.M1, day, day + DAY_MS)

    return run_client(sim, body, exchange)[0]


# ----------------------------------------------------------------------------- markets


def test_load_markets_asks_for_spot_instruments_only(okx: SimExchangeServer) -> None:
    markets = run_ccxt(okx, lambda ex: ex.load_markets())
    assert len(markets) >= 60
    assert all(m["spot"] and m["type"] == "spot" and m["active"] for m in markets.values())
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["base"], btc["quote"]) == ("BTC-USDT", "BTC", "USDT")
    assert btc["precision"] == {"amount": 1e-08, "price": 0.1}
    assert btc["limits"]["amount"]["min"] == 1e-05
    assert markets["ETH/BTC"]["quote"] == "BTC"
    assert okx.stats()["requests"] == {"/api/v5/public/instruments": 1}


def test_client_markets_carry_okx_trading_rules(okx: SimExchangeServer) -> None:
    markets, client = run_client(okx, lambda c: c.load_markets())
    btc = next(m for m in markets if m.symbol == "BTC/USDT")
    assert (btc.exchange, btc.exchange_symbol) == ("okx", "BTC-USDT")
    assert (btc.tick_size, btc.lot_size, btc.min_qty) == (Decimal("0.1"), Decimal("1E-8"),
                                                          Decimal("0.00001"))
    assert btc.min_notional is None  # OKX publishes none; nothing is invented
    eth = next(m for m in markets if m.symbol == "ETH/USDT")
    assert eth.tick_size == Decimal("0.01")
    assert client.source == f"okx@{okx.base_url}"


# ----------------------------------------------------------------------------- candles


def test_fetch_ohlcv_since_limit_recent_uses_live_candles(okx: SimExchangeServer) -> None:
    since = (int(time.time() * 1000) // MINUTE_MS - 600) * MINUTE_MS
    rows = run_ccxt(okx, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1m", since, 250))
    assert [r[0] for r in rows] == [since + i * MINUTE_MS for i in range(250)]
    assert all(r[3] <= min(r[1], r[4]) <= max(r[1], r[4]) <= r[2] for r in rows)
    assert okx.stats()["requests"].get("/api/v5/market/candles") == 1


def test_fetch_ohlcv_since_limit_history(okx: SimExchangeServer) -> None:
    rows = run_ccxt(okx, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1m", DAY, 100))
    assert [r[0] for r in rows] == [DAY + i * MINUTE_MS for i in range(100)]
    assert okx.stats()["requests"].get("/api/v5/market/history-candles") == 1
    # ccxt asks history-candles for limit=300 with after=since+300m; OKX serves at most 100
    # and the newest first, so such a page starts 200 minutes after since.
    capped = run_ccxt(okx, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1m", DAY, 300))
    assert [r[0] for r in capped] == [DAY + i * MINUTE_MS for i in range(200, 300)]
    hours = run_ccxt(okx, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1h", DAY, 24))
    assert [r[0] for r in hours] == [DAY + i * 3_600_000 for i in range(24)]
    days = run_ccxt(okx, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1d", DAY, 3))  # sends 1Dutc
    assert [r[0] for r in days] == [DAY + i * DAY_MS for i in range(3)]


def test_ccxt_paginate_with_until_keeps_only_the_newest_page(okx: SimExchangeServer) -> None:
    """Why ExchangeClient pages itself: ccxt sends the same ``after=until`` on every call."""
    rows = run_ccxt(okx, lambda ex: ex.fetch_ohlcv(
        "BTC/USDT", "1m", DAY, None, {"paginate": True, "until": DAY + DAY_MS}))
    stamps = [r[0] for r in rows]
    assert stamps == [DAY + DAY_MS - (100 - i) * MINUTE_MS for i in range(100)]


def test_a_whole_day_paginates_into_1440_unique_ascending_candles(
        okx: SimExchangeServer) -> None:
    candles = day_candles(okx)
    stamps = [datetime_to_ms(c.timestamp) for c in candles]
    assert stamps == [DAY + i * MINUTE_MS for i in range(1440)]
    first = candles[0]
    assert (first.symbol, first.timeframe) == ("BTC/USDT", Timeframe.M1)
    assert all(c.trades is None and c.taker_buy_volume is None and c.quote_volume is None
               for c in candles)
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
    assert all(c.close.as_tuple().exponent >= -1 for c in candles)  # OKX tick 0.1
    requests = okx.stats()["requests"]
    assert requests["/api/v5/market/history-candles"] == 15  # 1440 / 100 per page
    assert okx.stats()["statuses"] == {"200": sum(requests.values())}


def test_longer_timeframes_and_several_days(okx: SimExchangeServer) -> None:
    async def body(client: ExchangeClient) -> tuple[list[Any], list[Any]]:
        hours = await client.fetch_ohlcv("ETH/USDT", Timeframe.H1, DAY, DAY + 3 * DAY_MS)
        days = await client.fetch_ohlcv("ETH/USDT", Timeframe.D1, DAY, DAY + 5 * DAY_MS)
        return hours, days

    (hours, days), _ = run_client(okx, body)
    assert [datetime_to_ms(c.timestamp) for c in hours] == [DAY + i * 3_600_000
                                                            for i in range(72)]
    assert [datetime_to_ms(c.timestamp) for c in days] == [DAY + i * DAY_MS for i in range(5)]
    assert days[0].open == hours[0].open
    assert days[0].close == hours[23].close
    assert days[0].volume == sum((c.volume for c in hours[:24]), Decimal(0))


def test_client_paces_requests_to_okx_limits(okx: SimExchangeServer) -> None:
    async def body(client: ExchangeClient) -> list[list[Any]]:
        return list(await asyncio.gather(*(
            client.fetch_ohlcv("SOL/USDT", Timeframe.M1, DAY + i * DAY_MS, DAY + (i + 1) * DAY_MS)
            for i in range(2))))

    both, client = run_client(okx, body)
    assert [len(day) for day in both] == [1440, 1440]
    assert okx.stats()["rate_limited"] == 0
    assert client.retries == 0


def test_unpaced_bursts_get_okx_rate_limit_errors() -> None:
    async def body(ex: Any) -> list[Any]:
        await ex.load_markets()
        calls = [ex.fetch_ohlcv("BTC/USDT", "1m", DAY + i * 100 * MINUTE_MS, 100)
                 for i in range(25)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    frozen = 1_700_000_000_000  # one 2-second window for the whole burst
    with SimExchangeServer(port=0, venue="okx", wall_clock_ms=lambda: frozen) as okx:
        results = run_ccxt(okx, body, enableRateLimit=False)
        stats = okx.stats()
    limited = [r for r in results if isinstance(r, BaseException)]
    assert len(limited) == 5  # 20 history-candles requests per 2 s
    assert all(isinstance(r, ccxt.RateLimitExceeded) and "50011" in str(r) for r in limited)
    assert (stats["statuses"]["429"], stats["rate_limited"]) == (5, 5)


def test_the_same_minutes_on_both_venues_differ_by_a_tiny_basis(
        okx: SimExchangeServer, sim_exchange: SimExchangeServer) -> None:
    okx_day = day_candles(okx, "ETH/USDT")
    binance_day = day_candles(sim_exchange, "ETH/USDT", exchange="binance")
    assert [c.timestamp for c in okx_day] == [c.timestamp for c in binance_day]
    ratios = [o.close / b.close for o, b in zip(okx_day, binance_day, strict=True)]
    assert max(abs(r - 1) for r in ratios) < Decimal("0.001")
    assert any(r != 1 for r in ratios)


def test_divergence_fault_moves_okx_prices_only_in_its_window(
        okx: SimExchangeServer, sim_exchange: SimExchangeServer) -> None:
    okx.set_faults("divergence:symbol=BTCUSDT,start=2024-03-01T10:00,minutes=30,factor=1.08")
    okx_day = day_candles(okx)
    binance_day = day_candles(sim_exchange, exchange="binance")
    start, end = DAY + 600 * MINUTE_MS, DAY + 630 * MINUTE_MS
    for ours, theirs in zip(okx_day, binance_day, strict=True):
        ratio = ours.close / theirs.close
        if start <= datetime_to_ms(ours.timestamp) < end:
            assert abs(ratio - Decimal("1.08")) < Decimal("0.002")
        else:
            assert abs(ratio - 1) < Decimal("0.001")
    assert okx.stats()["faults_fired"] == {"divergence": 1}


# ----------------------------------------------------------------------------- tickers


def test_tickers_through_ccxt_and_the_client(okx: SimExchangeServer) -> None:
    async def body(ex: Any) -> Any:
        return await ex.fetch_tickers(["BTC/USDT", "ETH/USDT"])

    tickers = run_ccxt(okx, body)
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    btc = tickers["BTC/USDT"]
    assert btc["ask"] == pytest.approx(btc["bid"] + 0.1)
    assert btc["low"] <= btc["last"] <= btc["high"]
    assert btc["baseVolume"] > 0
    assert btc["quoteVolume"] > btc["baseVolume"] * btc["low"] * 0.99
    assert okx.stats()["requests"]["/api/v5/market/tickers"] == 1

    points, _ = run_client(okx, lambda c: c.fetch_tickers(["BTC/USDT", "SOL/USDT"]))
    sol = points["SOL/USDT"]
    assert (sol.source, sol.symbol) == ("okx", "SOL/USDT")
    assert sol.spread == sol.ask - sol.bid == Decimal("0.01")
    assert sol.bid <= sol.price <= sol.ask


def test_tickers_agree_with_binance_at_the_same_moment() -> None:
    with SimExchangeServer(port=0, venue="okx", now_ms=lambda: TICKER_NOW) as okx_sim, \
            SimExchangeServer(port=0, now_ms=lambda: TICKER_NOW) as binance_sim:
        ours, _ = run_client(okx_sim, lambda c: c.fetch_tickers(["BTC/USDT", "ETH/USDT"]))
        theirs, _ = run_client(binance_sim, lambda c: c.fetch_tickers(["BTC/USDT", "ETH/USDT"]),
                               "binance")
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert ours[symbol].timestamp == theirs[symbol].timestamp
        assert abs(ours[symbol].price / theirs[symbol].price - 1) < Decimal("0.001")
        assert ours[symbol].volume < theirs[symbol].volume  # OKX trades a share of it


def test_order_book_trades_and_time(okx: SimExchangeServer) -> None:
    async def body(ex: Any) -> tuple[Any, Any, Any]:
        book = await ex.fetch_order_book("BTC/USDT", 5)
        trades = await ex.fetch_trades("BTC/USDT", limit=20)
        return book, trades, await ex.fetch_time()

    before = int(time.time() * 1000)
    book, trades, server_time = run_ccxt(okx, body)
    assert before <= server_time <= int(time.time() * 1000)
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert len(trades) == 20
    assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
    assert {t["side"] for t in trades} <= {"buy", "sell"}
    assert all(t["amount"] >= 1e-8 and t["symbol"] == "BTC/USDT" for t in trades)


# ----------------------------------------------------------------------------- errors, faults


def test_error_codes_become_ccxt_errors(okx: SimExchangeServer) -> None:
    async def body(ex: Any) -> list[BaseException]:
        errors: list[BaseException] = []
        for call in (lambda: ex.publicGetMarketTicker({"instId": "NOPE-USDT"}),
                     lambda: ex.publicGetMarketCandles({"instId": "BTC-USDT", "bar": "7m"}),
                     lambda: ex.publicGetPublicInstruments({})):
            try:
                await call()
            except ccxt.BaseError as exc:
                errors.append(exc)
        return errors

    unknown, bad_bar, no_type = run_ccxt(okx, body)
    assert isinstance(unknown, ccxt.BadSymbol)
    assert "51001" in str(unknown)
    assert isinstance(bad_bar, ccxt.BadRequest)
    assert "51000" in str(bad_bar)
    assert isinstance(no_type, ccxt.BadRequest)
    assert "50014" in str(no_type)


def test_unknown_symbol_is_refused_before_any_candle_request(okx: SimExchangeServer) -> None:
    async def body(client: ExchangeClient) -> BaseException:
        with pytest.raises(UnknownSymbolError) as info:
            await client.fetch_ohlcv("BTC/USDX", Timeframe.M1, DAY, DAY + 60 * MINUTE_MS)
        return info.value

    error, _ = run_client(okx, body)
    assert "BTC/USDT" in str(error)
    assert set(okx.stats()["requests"]) == {"/api/v5/public/instruments"}


def test_a_429_fault_is_honoured_then_the_page_arrives(okx: SimExchangeServer) -> None:
    okx.set_faults("http429:count=1,retry_after=1,path=history-candles")

    async def body(client: ExchangeClient) -> list[Any]:
        return await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, DAY, DAY + 100 * MINUTE_MS)

    started = time.monotonic()
    candles, client = run_client(okx, body)
    waited = time.monotonic() - started
    assert len(candles) == 100
    assert client.retries == 1
    assert waited >= 0.9  # the Retry-After second, not the 10 ms backoff
    stats = okx.stats()
    assert stats["faults_fired"] == {"http429": 1}
    assert stats["statuses"]["429"] == 1


def test_5xx_and_truncated_pages_are_retried(okx: SimExchangeServer) -> None:
    okx.set_faults("http5xx:count=2,path=history-candles;truncated:count=1,path=history-candles")
    candles = day_candles(okx, "ETH/USDT", DAY + DAY_MS)
    assert [datetime_to_ms(c.timestamp) for c in candles] == [DAY + DAY_MS + i * MINUTE_MS
                                                              for i in range(1440)]
    assert okx.stats()["faults_fired"] == {"http5xx": 2, "truncated": 1}


def test_the_unified_pager_also_walks_forward_venues(sim_exchange: SimExchangeServer) -> None:
    """Binance answers the earliest candles from ``since``: the same pager covers that too."""
    async def body(client: ExchangeClient) -> list[tuple[int, Any]]:
        market = await client._market("BTC/USDT")
        return await client._unified_chunk(market, Timeframe.M1, DAY, DAY + 2500 * MINUTE_MS)

    rows, _ = run_client(sim_exchange, body, "binance")
    assert [t for t, _ in rows] == [DAY + i * MINUTE_MS for i in range(2500)]
