"""The real ccxt binance client against the simulated exchange over HTTP (no mocks)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import ccxt.async_support as ccxt
import pytest

from helios_pipeline.domain.timeframe import MINUTE_MS, datetime_to_ms
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.conftest import EXCERPT, KLINES_DIR

T = TypeVar("T")
NOW = datetime_to_ms(datetime(2024, 2, 4, 15, 23, 11, tzinfo=UTC))
NOW_MINUTE = NOW // MINUTE_MS * MINUTE_MS
REPLAY_NOW = datetime_to_ms(datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC))
WEIGHT = "X-MBX-USED-WEIGHT-1M"


def golden(method: str, index: int = 0) -> dict[str, Any]:
    cases = json.loads(EXCERPT.read_text())
    case: dict[str, Any] = cases["response"][method][index]
    return case


def exchange_for(sim: SimExchangeServer, **config: Any) -> Any:
    exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}},
                             "enableLastJsonResponse": True, **config})
    exchange.urls["api"]["public"] = sim.api_url
    exchange.urls["api"]["private"] = sim.api_url
    return exchange


def run(sim: SimExchangeServer, body: Callable[[Any], Awaitable[T]], **config: Any) -> T:
    """Run ``body(exchange)`` with a fresh ccxt binance pointed at ``sim``."""
    async def main() -> T:
        exchange = exchange_for(sim, **config)
        try:
            return await body(exchange)
        finally:
            await exchange.close()

    return asyncio.run(main())


def http_get(url: str) -> tuple[int, dict[str, str], Any]:
    async def main() -> tuple[int, dict[str, str], Any]:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, dict(response.headers), json.loads(await response.read())

    return asyncio.run(main())


def http_post(url: str, text: str) -> tuple[int, Any]:
    async def main() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.post(url, data=text) as response:
            return response.status, json.loads(await response.read())

    return asyncio.run(main())


@pytest.fixture(scope="module")
def seeded() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, now_ms=lambda: NOW) as sim:
        yield sim


@pytest.fixture
def sim(seeded: SimExchangeServer) -> Iterator[SimExchangeServer]:
    seeded.set_faults("")
    yield seeded
    seeded.set_faults("")


class FakeWallClock:
    """A settable wall clock for the weight windows (starts 45 s into a minute)."""

    def __init__(self) -> None:
        self.ms = NOW_MINUTE + 45_000

    def __call__(self) -> int:
        return self.ms


# ----------------------------------------------------------------------------- markets


def test_load_markets_lists_spot_markets_with_trading_rules(sim: SimExchangeServer) -> None:
    markets = run(sim, lambda ex: ex.load_markets())
    assert len(markets) >= 60
    assert all(m["spot"] and m["type"] == "spot" and m["active"] for m in markets.values())
    btc = markets["BTC/USDT"]
    assert btc["id"] == "BTCUSDT"
    assert btc["precision"]["price"] == 0.01
    assert btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["amount"]["min"] == 0.00001
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["limits"]["market"]["max"] > 0
    assert markets["ETH/BTC"]["quote"] == "BTC"

    async def with_decimals(ex: Any) -> Any:
        ex.number = Decimal
        return await ex.load_markets()

    exact = run(sim, with_decimals)["BTC/USDT"]
    assert exact["precision"]["price"] == Decimal("0.01")
    assert exact["limits"]["cost"]["min"] == Decimal("5")


def test_exchange_info_symbol_filters_and_rate_limits(sim: SimExchangeServer) -> None:
    status, _, one = http_get(f"{sim.api_url}/exchangeInfo?symbol=BTCUSDT")
    assert status == 200
    assert [s["symbol"] for s in one["symbols"]] == ["BTCUSDT"]
    assert one["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                    "intervalNum": 1, "limit": 6000}
    filters = {f["filterType"]: f for f in one["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert "MARKET_LOT_SIZE" in filters
    assert one["symbols"][0]["permissions"] == ["SPOT"]
    _, _, two = http_get(f'{sim.api_url}/exchangeInfo?symbols=["ETHUSDT","SOLUSDT"]')
    assert [s["symbol"] for s in two["symbols"]] == ["ETHUSDT", "SOLUSDT"]


# ----------------------------------------------------------------------------- klines


def test_fetch_ohlcv_since_limit_has_the_golden_shape(sim: SimExchangeServer) -> None:
    case = golden("fetchOHLCV")
    symbol, timeframe, since, limit = case["input"]

    async def body(ex: Any) -> tuple[Any, Any]:
        return await ex.fetch_ohlcv(symbol, timeframe, since, limit), ex.last_json_response

    parsed, raw = run(sim, body)
    expected_raw = case["httpResponse"]
    assert [r[0] for r in parsed] == [r[0] for r in case["parsedResponse"]]
    assert [r[6] for r in raw] == [r[6] for r in expected_raw]
    for ours, theirs in zip(raw, expected_raw, strict=True):
        assert [type(v) for v in ours] == [type(v) for v in theirs]
        assert ours[11] == "0"
    assert all(len(r) == 6 and all(isinstance(v, (int, float)) for v in r) for r in parsed)


def test_golden_klines_are_served_exactly_from_a_replay(tmp_path: Path) -> None:
    """1m files built so that their hourly aggregates are the golden 1h klines."""
    case = golden("fetchOHLCV")
    lines = []
    for o_t, o, h, lo, c, v, _, q, n, tb, tq, ignore in case["httpResponse"]:
        lines.append(f"{o_t},{o},{h},{lo},{c},{v},{o_t + 59_999},{q},{n},{tb},{tq},{ignore}")
        zero = "0.00000000"
        for i in range(1, 60):
            t = o_t + i * MINUTE_MS
            lines.append(f"{t},{c},{c},{c},{c},{zero},{t + 59_999},{zero},0,{zero},{zero},0")
    (tmp_path / "BTCUSDT-1m-2024-01-30.csv").write_text("\n".join(lines) + "\n")
    with SimExchangeServer(data_dir=tmp_path, now_ms=lambda: NOW) as sim:
        async def body(ex: Any) -> tuple[Any, Any, Any]:
            parsed = await ex.fetch_ohlcv(*case["input"])
            return parsed, ex.last_json_response, ex.last_http_response

        parsed, raw, text = run(sim, body)
    assert raw == case["httpResponse"]
    assert text == json.dumps(case["httpResponse"], separators=(",", ":"))
    assert parsed == case["parsedResponse"]


def test_klines_pagination_follows_binance(sim: SimExchangeServer) -> None:
    since = NOW_MINUTE - 3 * 1440 * MINUTE_MS

    async def body(ex: Any) -> dict[str, Any]:
        first = await ex.fetch_ohlcv("BTC/USDT", "1m", since, 1000)
        second = await ex.fetch_ohlcv("BTC/USDT", "1m", first[-1][0] + MINUTE_MS, 1000)
        return {
            "pages": first + second,
            "unaligned": await ex.fetch_ohlcv("BTC/USDT", "1m", since + 30_000, 2),
            "until": await ex.fetch_ohlcv("BTC/USDT", "1m", since, 100,
                                          {"until": since + 9 * MINUTE_MS}),
            "latest": await ex.fetch_ohlcv("BTC/USDT", "1m", None, 5),
            "default": await ex.fetch_ohlcv("BTC/USDT", "1m", since),
            "future": await ex.fetch_ohlcv("BTC/USDT", "1m", NOW + MINUTE_MS, 5),
            "hours": await ex.fetch_ohlcv("BTC/USDT", "1h", since, 5),
            "paginated": await ex.fetch_ohlcv("ETH/USDT", "1m", since, 2500, {
                "paginate": True, "until": since + 2500 * MINUTE_MS - 1}),
        }

    got = run(sim, body)
    opens = [c[0] for c in got["pages"]]
    assert opens == list(range(since, since + 2000 * MINUTE_MS, MINUTE_MS))
    assert got["unaligned"][0][0] == since + MINUTE_MS
    assert [c[0] for c in got["until"]] == list(range(since, since + 10 * MINUTE_MS, MINUTE_MS))
    assert [c[0] for c in got["latest"]][-1] == NOW_MINUTE  # the still-open kline, as Binance
    assert len(got["default"]) == 500
    assert got["future"] == []
    assert [c[0] for c in got["hours"]][1] - got["hours"][0][0] == 60 * MINUTE_MS
    assert [c[0] for c in got["paginated"]] == list(range(since, since + 2500 * MINUTE_MS,
                                                           MINUTE_MS))


def test_decimal_numbers_are_the_exact_wire_strings(sim: SimExchangeServer) -> None:
    async def body(ex: Any) -> tuple[Any, Any, Any]:
        ex.number = Decimal
        candles = await ex.fetch_ohlcv("ETH/USDT", "1m", NOW_MINUTE - 10 * MINUTE_MS, 5)
        return candles, ex.last_json_response, await ex.fetch_ticker("ETH/USDT")

    candles, raw, ticker = run(sim, body)
    for candle, row in zip(candles, raw, strict=True):
        assert candle[1:] == [Decimal(v) for v in row[1:6]]
        assert all(isinstance(v, Decimal) for v in candle[1:])
    assert isinstance(ticker["last"], Decimal)


def test_binance_errors_and_limits_over_http(sim: SimExchangeServer) -> None:
    api = sim.api_url
    cases = {
        "/klines?symbol=NOPEUSDT&interval=1m": -1121,
        "/klines?symbol=BTCUSDT&interval=7m": -1120,
        "/klines?interval=1m": -1102,
        "/klines?symbol=BTCUSDT&interval=1m&startTime=abc": -1100,
        "/klines?symbol=BTCUSDT&interval=1m&startTime=5&endTime=4": -1023,
        "/klines?symbol=BTCUSDT&interval=1m&limit=0": -1130,
        "/ticker/24hr?symbol=btcusdt": -1100,
        '/ticker/price?symbols=["BTCUSDT","BTCUSDT"]': -1151,
    }
    for path, code in cases.items():
        status, headers, body = http_get(api + path)
        assert (status, body["code"]) == (400, code), path
        assert WEIGHT in headers
    assert http_get(api + "/klines?symbol=NOPEUSDT&interval=1m")[2] == {
        "code": -1121, "msg": "Invalid symbol."}
    _, _, capped = http_get(api + "/klines?symbol=BTCUSDT&interval=1m&limit=1500&startTime=0")
    assert len(capped) == 1000
    _, _, prices = http_get(api + '/ticker/price?symbols=["BTCUSDT","ETHUSDT"]')
    assert [p["symbol"] for p in prices] == ["BTCUSDT", "ETHUSDT"]

    async def bad_interval(ex: Any) -> None:
        await ex.load_markets()
        with pytest.raises(ccxt.BadRequest, match="-1120"):
            await ex.fetch_ohlcv("BTC/USDT", "7m")

    run(sim, bad_interval)


# ----------------------------------------------------------------------------- tickers, trades


def test_ticker_has_the_golden_fields_and_matches_the_market(sim: SimExchangeServer) -> None:
    case = golden("fetchTicker")

    async def body(ex: Any) -> tuple[Any, Any, Any, Any]:
        ticker = await ex.fetch_ticker("BTC/USDT")
        raw = ex.last_json_response
        latest = await ex.fetch_ohlcv("BTC/USDT", "1m", None, 1)
        return ticker, raw, latest, await ex.fetch_tickers(["BTC/USDT", "ETH/USDT"])

    ticker, raw, latest, tickers = run(sim, body)
    expected = case["httpResponse"]
    assert list(raw) == list(expected)
    for key, value in raw.items():
        if isinstance(value, str):
            assert isinstance(expected[key], str)
        else:  # ints on the wire; the ccxt fixture stores them as strings of digits
            assert isinstance(value, int)
            assert str(int(expected[key])) == expected[key]
    assert set(ticker) == set(case["parsedResponse"])
    assert ticker["timestamp"] == NOW
    assert ticker["last"] == latest[-1][4]
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    assert ticker["bid"] < ticker["ask"]
    assert ticker["bid"] <= ticker["last"] <= ticker["ask"]
    assert raw["count"] > 0
    assert raw["firstId"] < raw["lastId"]
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    assert tickers["BTC/USDT"]["last"] == ticker["last"]


def test_all_tickers_and_bids_asks(sim: SimExchangeServer) -> None:
    async def body(ex: Any) -> tuple[Any, Any, Any]:
        everything = await ex.fetch_tickers()
        bids_asks = await ex.fetch_bids_asks(["BTC/USDT", "SOL/USDT"])
        return everything, bids_asks, await ex.fetch_order_book("BTC/USDT", 5)

    everything, bids_asks, book = run(sim, body)
    assert len(everything) >= 60
    assert all(t["last"] > 0 for t in everything.values())
    assert set(bids_asks) == {"BTC/USDT", "SOL/USDT"}
    for quote in bids_asks.values():
        assert 0 < quote["bid"] < quote["ask"]
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["nonce"] == NOW
    golden_book = golden("fetchOrderBook")
    assert set(book) == set(golden_book["parsedResponse"])


def test_trades_have_the_golden_fields_and_add_up_to_the_candle(sim: SimExchangeServer) -> None:
    case = golden("fetchTrades")
    minute = NOW_MINUTE - 120 * MINUTE_MS

    async def body(ex: Any) -> dict[str, Any]:
        ex.number = Decimal
        recent = await ex.fetch_trades("BTC/USDT")
        raw_recent = ex.last_json_response
        window = await ex.fetch_trades("BTC/USDT", NOW - 3_600_000, 50)
        ticker = await ex.fetch_ticker("BTC/USDT")
        whole = await ex.fetch_trades("KAVA/USDT", minute, 1000, {"until": minute + 59_999})
        candle = (await ex.fetch_ohlcv("KAVA/USDT", "1m", minute, 1))[0]
        fills = await ex.fetch_trades("BTC/USDT", None, 30,
                                      {"fetchTradesMethod": "publicGetTrades"})
        return {"recent": recent, "raw": raw_recent, "window": window, "ticker": ticker,
                "whole": whole, "candle": candle, "fills": fills}

    got = run(sim, body)
    assert list(got["raw"][0]) == list(case["httpResponse"][0])
    assert list(got["recent"][0]) == list(case["parsedResponse"][0])
    stamps = [t["timestamp"] for t in got["recent"]]
    assert len(stamps) == 500
    assert stamps == sorted(stamps)
    assert stamps[-1] <= NOW
    assert got["recent"][-1]["price"] == got["ticker"]["last"]
    assert all(NOW - 3_600_000 <= t["timestamp"] <= NOW for t in got["window"])
    whole, candle = got["whole"], got["candle"]
    assert 0 < len(whole) < 1000
    assert whole[0]["price"] == candle[1]
    assert max(t["price"] for t in whole) == candle[2]
    assert min(t["price"] for t in whole) == candle[3]
    assert whole[-1]["price"] == candle[4]
    assert sum(t["amount"] for t in whole) == candle[5]
    assert len(got["fills"]) == 30
    assert [int(t["id"]) for t in got["fills"]] == list(
        range(int(got["fills"][0]["id"]), int(got["fills"][0]["id"]) + 30))


def test_replayed_symbol_serves_the_recorded_csv() -> None:
    folder = KLINES_DIR
    first_rows = (folder / "BTCUSDT-1m-2025-01-01.csv").read_text().splitlines()[:3]
    with SimExchangeServer(data_dir=folder, now_ms=lambda: REPLAY_NOW) as sim:
        async def body(ex: Any) -> tuple[Any, Any, Any]:
            await ex.fetch_ohlcv("BTC/USDT", "1m", 1735689600000, 3)
            raw = ex.last_json_response
            return raw, await ex.fetch_ticker("BTC/USDT"), await ex.fetch_ohlcv(
                "ETH/USDT", "1m", 1735689600000, 3)

        raw, ticker, eth = run(sim, body)
    for row, line in zip(raw, first_rows, strict=True):
        fields = line.split(",")
        assert row[0] == int(fields[0]) // 1000
        assert row[6] == int(fields[6]) // 1000
        assert row[1:6] == fields[1:6]
        assert row[7] == fields[7]
        assert row[8] == int(fields[8])
        assert row[9:] == fields[9:]
    assert ticker["timestamp"] == REPLAY_NOW
    assert 90_000 < ticker["last"] < 100_000
    assert len(eth) == 3


# ----------------------------------------------------------------------------- weight budget


def test_used_weight_header_is_on_every_response_and_increases() -> None:
    clock = FakeWallClock()
    with SimExchangeServer(now_ms=lambda: NOW, wall_clock_ms=clock) as sim:
        async def body(ex: Any) -> list[int]:
            seen = []
            for call in (ex.load_markets(), ex.fetch_ohlcv("BTC/USDT", "1m", None, 2),
                         ex.fetch_ticker("BTC/USDT"), ex.fetch_trades("BTC/USDT", None, 5),
                         ex.fetch_tickers()):
                await call
                seen.append(int(ex.last_response_headers[WEIGHT]))
            return seen

        assert run(sim, body) == [20, 22, 24, 28, 108]
        assert http_get(f"{sim.api_url}/ping")[1][WEIGHT] == "109"
        clock.ms += 20_000  # the next wall-clock minute starts a new window
        assert http_get(f"{sim.api_url}/time")[1][WEIGHT] == "1"
        assert sim.stats()["weight_used_1m"] == 1


def test_over_budget_gives_429_and_persisting_gives_a_418_ban() -> None:
    clock = FakeWallClock()
    with SimExchangeServer(now_ms=lambda: NOW, weight_limit=24, ban_after=2,
                           wall_clock_ms=clock) as sim:
        async def body(ex: Any) -> list[tuple[str, str | None]]:
            await ex.load_markets()  # 20
            await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)  # 22
            await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)  # 24
            outcomes = []
            for _ in range(3):
                with pytest.raises(ccxt.DDoSProtection) as info:
                    await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)
                outcomes.append((str(info.value)[:12], ex.last_response_headers.get(
                    "Retry-After")))
            clock.ms += 61_000
            with pytest.raises(ccxt.DDoSProtection, match="IP banned until"):
                await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)
            clock.ms += 60_000
            await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)
            return outcomes

        outcomes = run(sim, body)
        assert outcomes == [("binance 429 ", "15"), ("binance 429 ", "15"),
                            ("binance 418 ", "120")]
        assert sim.stats()["statuses"]["429"] == 2


# ----------------------------------------------------------------------------- faults


def test_rate_limit_and_ban_faults_reach_ccxt_with_retry_after(sim: SimExchangeServer) -> None:
    async def body(ex: Any) -> list[tuple[type[BaseException], str]]:
        await ex.load_markets()
        seen = []
        for spec in ("http429:count=1,retry_after=7,path=klines", "ban:count=1,path=klines"):
            sim.set_faults(spec)
            with pytest.raises(ccxt.DDoSProtection) as info:
                await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)
            seen.append((type(info.value), ex.last_response_headers["Retry-After"]))
            assert len(await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)) == 2  # used up
        return seen

    assert run(sim, body) == [(ccxt.DDoSProtection, "7"), (ccxt.DDoSProtection, "120")]
    status, headers, payload = http_get(f"{sim.base_url}/_sim/stats")
    assert status == 200
    assert WEIGHT in headers
    assert payload["faults_fired"]["http429"] >= 1
    assert payload["faults_fired"]["ban"] >= 1


def test_server_errors_timeouts_and_latency_reach_ccxt(sim: SimExchangeServer) -> None:
    async def body(ex: Any) -> list[type[BaseException]]:
        await ex.load_markets()
        raised = []
        for spec in ("http5xx:count=1,path=klines", "http5xx:count=1,status=504,path=klines",
                     "timeout:count=1,seconds=5,path=klines"):
            sim.set_faults(spec)
            started = time.perf_counter()
            with pytest.raises(ccxt.NetworkError) as info:
                await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)
            assert time.perf_counter() - started < 2.0
            raised.append(type(info.value))
        sim.set_faults("latency:ms=250,path=klines")
        started = time.perf_counter()
        await ex.fetch_ohlcv("BTC/USDT", "1m", None, 2)
        assert time.perf_counter() - started >= 0.25
        return raised

    raised = run(sim, body, timeout=400)
    assert raised == [ccxt.ExchangeNotAvailable, ccxt.RequestTimeout, ccxt.RequestTimeout]


def test_malformed_and_truncated_bodies_reach_ccxt_as_unusable_data(
        sim: SimExchangeServer) -> None:
    """ccxt 4.5 raises nothing for a non-JSON 200: it hands back the text, parsed into Nones."""
    async def body(ex: Any) -> dict[str, Any]:
        await ex.load_markets()
        sim.set_faults("malformed:count=1,path=klines")
        junk = await ex.fetch_ohlcv("BTC/USDT", "1m", None, 3)
        malformed = (ex.last_json_response, ex.last_http_response)
        sim.set_faults("truncated:count=1,path=klines")
        cut = await ex.fetch_ohlcv("BTC/USDT", "1m", None, 3)
        truncated = (ex.last_json_response, ex.last_http_response)
        good = await ex.fetch_ohlcv("BTC/USDT", "1m", None, 3)
        return {"junk": junk, "malformed": malformed, "cut": cut, "truncated": truncated,
                "good": good, "full": ex.last_http_response}

    got = run(sim, body)
    assert got["malformed"][0] is None
    assert got["malformed"][1].startswith("<html>")
    assert any(value is None for row in got["junk"] for value in row)
    assert got["truncated"][0] is None
    with pytest.raises(json.JSONDecodeError):
        json.loads(got["truncated"][1])
    assert got["full"].startswith(got["truncated"][1])
    assert len(got["truncated"][1]) == len(got["full"]) // 2
    assert any(value is None for row in got["cut"] for value in row)
    assert len(got["good"]) == 3


def test_data_faults_reach_ccxt_and_the_admin_endpoints_work(sim: SimExchangeServer) -> None:
    start = NOW_MINUTE - 60 * MINUTE_MS
    at = datetime.fromtimestamp((start + 10 * MINUTE_MS) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")
    spike_at = datetime.fromtimestamp((start + 40 * MINUTE_MS) / 1000, tz=UTC).strftime(
        "%Y-%m-%dT%H:%M")
    clean = run(sim, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1m", start, 61))
    status, reply = http_post(f"{sim.base_url}/_sim/faults",
                              f"missing:symbol=BTCUSDT,start={at},minutes=5;"
                              f"spike:symbol=BTC/USDT,at={spike_at},factor=2")
    assert status == 200
    assert reply["faults"].startswith("missing:")
    faulty = run(sim, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1m", start, 61))
    assert clean[-1][0] == NOW_MINUTE
    assert [c[0] for c in faulty] == [c[0] for c in clean[:10] + clean[15:]]
    spiked = next(c for c in faulty if c[0] == start + 40 * MINUTE_MS)
    assert spiked[2] == pytest.approx(clean[40][2] * 2)
    assert spiked[4] == pytest.approx(clean[40][4] * 2)
    status, reply = http_post(f"{sim.base_url}/_sim/faults", "explode:now=1")
    assert status == 400
    assert "unknown kind 'explode'" in reply["error"]
    assert http_get(f"{sim.base_url}/_sim/faults")[2]["faults"].startswith("missing:")
    stats = sim.stats()
    assert stats["faults_fired"]["missing"] >= 1
    assert stats["requests"]["/api/v3/klines"] >= 2
    assert http_post(f"{sim.base_url}/_sim/faults", "")[1] == {"faults": ""}
    assert run(sim, lambda ex: ex.fetch_ohlcv("BTC/USDT", "1m", start, 61)) == clean
