"""The real ccxt.pro binance client and raw websockets against the simulated exchange's streams.

Servers run on the wall clock (``live``), with a fixed trade rate (``fast``), with a market
clock 30x faster than the wall clock so that whole minutes pass in two seconds (``warp``) and
with second-scale keep-alive settings (``short_lived``).

Tests that time how soon data flows use ``fast``: the wall-clock market sends each minute's real
fills, and some minutes of the day have only a handful (BTCUSDT: 24 in its quietest minute).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import ccxt.pro as ccxtpro
import pytest

from helios_pipeline.domain.timeframe import MINUTE_MS, datetime_to_ms
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig

T = TypeVar("T")
WARP = 30
WARP_START = datetime_to_ms(datetime(2024, 3, 5, 10, 0, 58, tzinfo=UTC))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def pro(sim: SimExchangeServer) -> Any:
    """A ccxt.pro binance whose REST and websocket URLs point at ``sim``."""
    exchange = ccxtpro.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"]["public"] = sim.api_url
    exchange.urls["api"]["private"] = sim.api_url
    exchange.urls["api"]["ws"]["spot"] = sim.ws_url
    return exchange


async def with_pro(sim: SimExchangeServer, body: Callable[[Any], Awaitable[T]]) -> T:
    exchange = pro(sim)
    try:
        return await body(exchange)
    finally:
        await exchange.close()


@asynccontextmanager
async def connect(sim: SimExchangeServer, path: str = "/ws/0",
                  **options: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"ws://127.0.0.1:{sim.port}{path}", **options) as ws:
        yield ws


async def request(ws: aiohttp.ClientWebSocketResponse, payload: Any) -> dict[str, Any]:
    """Send a control frame and return its reply (data frames in between are skipped)."""
    await ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))
    while True:
        frame = json.loads((await ws.receive(timeout=5)).data)
        if "result" in frame or "error" in frame:
            reply: dict[str, Any] = frame
            return reply


async def data_frames(ws: aiohttp.ClientWebSocketResponse, seconds: float,
                      ) -> list[tuple[float, str]]:
    """``(receive time, text)`` of every text frame within ``seconds``."""
    out: list[tuple[float, str]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        out.append((time.monotonic(), msg.data))
    return out


async def http(sim: SimExchangeServer, method: str, path: str, body: str = "") -> Any:
    async with aiohttp.ClientSession() as session, session.request(
            method, f"{sim.base_url}{path}", data=body) as response:
        return json.loads(await response.read())


async def set_faults(sim: SimExchangeServer, spec: str) -> None:
    assert (await http(sim, "POST", "/_sim/faults", spec))["faults"] == spec


@pytest.fixture(scope="module")
def live_server() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0) as sim:
        yield sim


@pytest.fixture
def live(live_server: SimExchangeServer) -> Iterator[SimExchangeServer]:
    live_server.set_faults("")
    yield live_server
    live_server.set_faults("")


@pytest.fixture(scope="module")
def fast_server() -> Iterator[SimExchangeServer]:
    config = WsConfig(trades_per_second=4.0, symbol_trades_per_second={"BTCUSDT": 300.0})
    with SimExchangeServer(port=0, ws_config=config) as sim:
        yield sim


@pytest.fixture
def fast(fast_server: SimExchangeServer) -> Iterator[SimExchangeServer]:
    fast_server.set_faults("")
    yield fast_server
    fast_server.set_faults("")


@pytest.fixture(scope="module")
def warp() -> Iterator[SimExchangeServer]:
    """Market clock at 30x from 2024-03-05 10:00:58: a minute passes every two seconds."""
    origin = wall_ms()
    config = WsConfig(symbol_trades_per_second={"ETHUSDT": 2.0, "SOLUSDT": 100.0})
    with SimExchangeServer(port=0, now_ms=lambda: WARP_START + (wall_ms() - origin) * WARP,
                           ws_config=config) as sim:
        yield sim


@pytest.fixture(scope="module")
def short_lived() -> Iterator[SimExchangeServer]:
    config = WsConfig(ping_interval_s=0.2, pong_timeout_s=0.7, max_lifetime_s=1.5)
    with SimExchangeServer(port=0, ws_config=config) as sim:
        yield sim


# ----------------------------------------------------------------------------- ccxt.pro


def test_ccxt_pro_watches_trades_tickers_books_and_candles(live: SimExchangeServer) -> None:
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]

    async def watch_all(ex: Any, symbol: str) -> None:
        trade = (await ex.watch_trades(symbol))[-1]
        assert trade["symbol"] == symbol
        assert trade["price"] > 0
        assert trade["amount"] > 0
        assert abs(trade["timestamp"] - wall_ms()) < 5_000
        ticker = await ex.watch_ticker(symbol)
        assert ticker["symbol"] == symbol
        assert ticker["low"] <= ticker["last"] <= ticker["high"]
        book = (await ex.watch_bids_asks([symbol]))[symbol]
        assert 0 < book["bid"] < book["ask"]
        assert book["bidVolume"] > 0
        candle = (await ex.watch_ohlcv(symbol, "1m"))[-1]
        minute = wall_ms() // MINUTE_MS * MINUTE_MS
        assert candle[0] in (minute, minute - MINUTE_MS)
        assert candle[3] <= min(candle[1], candle[4]) <= max(candle[1], candle[4]) <= candle[2]

    async def body(ex: Any) -> None:
        await ex.load_markets()
        await asyncio.gather(*(watch_all(ex, symbol) for symbol in symbols))
        seen = [t for _ in range(5) for t in await ex.watch_trades("BTC/USDT")]
        rest = {t["id"]: t for t in await ex.fetch_trades(
            "BTC/USDT", limit=1000, params={"fetchTradesMethod": "publicGetTrades"})}
        for t in seen:  # the same fills, ids and times as GET /api/v3/trades
            assert (rest[t["id"]]["price"], rest[t["id"]]["amount"]) == (t["price"], t["amount"])
            assert (rest[t["id"]]["timestamp"], rest[t["id"]]["side"]) == (t["timestamp"],
                                                                           t["side"])

    run(with_pro(live, body))


def test_watch_trades_for_55_symbols_on_one_connection(fast: SimExchangeServer) -> None:
    async def body(ex: Any) -> tuple[set[str], list[str], dict[str, Any]]:
        await ex.load_markets()
        symbols = [s for s in ex.symbols if s.endswith("/USDT") and s != "BTC/USDT"][:55]
        seen: set[str] = set()
        deadline = time.monotonic() + 15
        while seen != set(symbols) and time.monotonic() < deadline:
            await ex.watch_trades_for_symbols(symbols)  # resolves with one symbol's news
            seen = {s for s in symbols if ex.trades.get(s)}
        return seen, symbols, (await http(fast, "GET", "/_sim/stats"))["ws"]

    seen, symbols, stats = run(with_pro(fast, body))
    assert len(symbols) == 55
    assert seen == set(symbols)
    assert stats["connections"] == 1
    assert stats["subscriptions"] == 55


# ----------------------------------------------------------------------------- reconciliation


async def _collect_minute(sim: SimExchangeServer, minute: int) -> dict[str, list[Any]]:
    """Events of BTC (trade, aggTrade, kline_1m), ETH and SOL until ``minute`` has closed."""
    streams = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@kline_1m", "ethusdt@trade",
               "ethusdt@kline_1m", "solusdt@trade", "solusdt@kline_1m"]
    events: dict[str, list[Any]] = {s: [] for s in streams}
    closed: set[str] = set()
    async with connect(sim, "/stream?streams=" + "/".join(streams)) as ws:
        while len(closed) < 3:
            frame = json.loads((await ws.receive(timeout=10)).data)
            data = frame["data"]
            events[frame["stream"]].append(data)
            if data["e"] == "kline" and data["k"]["x"] and data["k"]["t"] == minute:
                closed.add(data["s"])
    return events


def _candle(trades: list[dict[str, Any]], minute: int) -> tuple[Decimal, ...]:
    inside = [t for t in trades if minute <= t["T"] < minute + MINUTE_MS]
    prices = [Decimal(t["p"]) for t in inside]
    return (prices[0], max(prices), min(prices), prices[-1],
            sum((Decimal(t["q"]) for t in inside), Decimal(0)), Decimal(len(inside)))


async def _rest_minute(sim: SimExchangeServer, symbol: str, minute: int) -> list[Any]:
    rows = await http(sim, "GET", f"/api/v3/klines?symbol={symbol}&interval=1m&"
                                  f"startTime={minute}&limit=1")
    assert rows[0][0] == minute
    row: list[Any] = rows[0]
    return row


async def _rest_aggs(sim: SimExchangeServer, minute: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = await http(
        sim, "GET", f"/api/v3/aggTrades?symbol=BTCUSDT&startTime={minute}&"
                    f"endTime={minute + MINUTE_MS - 1}&limit=1000")
    while len(out) % 1000 == 0:
        more = await http(sim, "GET", f"/api/v3/aggTrades?symbol=BTCUSDT&limit=1000&"
                                      f"fromId={out[-1]['a'] + 1}")
        out += [a for a in more if a["T"] < minute + MINUTE_MS]
        if len(more) < 1000 or more[-1]["T"] >= minute + MINUTE_MS:
            break
    return out


def test_live_candles_reconcile_with_rest_klines(warp: SimExchangeServer) -> None:
    async def main() -> None:
        now = warp.exchange.now_ms()  # the first minute that starts after we subscribed:
        minute = ((now + 15_000) // MINUTE_MS + 1) * MINUTE_MS
        events, ccxt_candle = await asyncio.gather(_collect_minute(warp, minute),
                                                   _ccxt_candle(warp, minute))
        for symbol, n_expected in (("BTCUSDT", None), ("ETHUSDT", 120), ("SOLUSDT", 6000)):
            row = await _rest_minute(warp, symbol, minute)
            trades = events[f"{symbol.lower()}@trade"]
            o, h, low, c, v, n = _candle(trades, minute)
            assert (o, h, low, c, v) == tuple(Decimal(x) for x in row[1:6]), symbol
            assert n == (row[8] if n_expected is None else n_expected), symbol
            final = [k["k"] for k in events[f"{symbol.lower()}@kline_1m"]
                     if k["k"]["t"] == minute and k["k"]["x"]]
            assert len(final) == 1
            assert [final[0][f] for f in "tohlcvTq"] == row[:8]
            assert [final[0][f] for f in "VQ"] == row[9:11]
        btc = [t for t in events["btcusdt@trade"] if minute <= t["T"] < minute + MINUTE_MS]
        assert [t["t"] for t in btc] == list(range(btc[0]["t"], btc[0]["t"] + len(btc)))
        buys = sum((Decimal(t["q"]) for t in btc if not t["m"]), Decimal(0))
        assert buys == Decimal((await _rest_minute(warp, "BTCUSDT", minute))[9])
        aggs = [{k: v for k, v in a.items() if k not in "eEs"}
                for a in events["btcusdt@aggTrade"] if minute <= a["T"] < minute + MINUTE_MS]
        assert aggs == await _rest_aggs(warp, minute)
        assert ccxt_candle == [float(x) for x in (await _rest_minute(warp, "ETHUSDT", minute))[
            1:6]]

    run(main())


async def _ccxt_candle(sim: SimExchangeServer, minute: int) -> list[float]:
    """OHLCV of ``minute`` built by ccxt.pro from watch_trades of ETH/USDT (2 trades/s)."""
    async def body(ex: Any) -> list[float]:
        trades: dict[str, Any] = {}
        while True:
            for t in await ex.watch_trades("ETH/USDT"):
                trades[t["id"]] = t
            if any(t["timestamp"] >= minute + MINUTE_MS for t in trades.values()):
                break
        inside = sorted((t for t in trades.values() if minute <= t["timestamp"] < minute
                         + MINUTE_MS), key=lambda t: int(t["id"]))
        prices = [t["price"] for t in inside]
        volume = sum((Decimal(t["info"]["q"]) for t in inside), Decimal(0))
        return [prices[0], max(prices), min(prices), prices[-1], float(volume)]

    return await with_pro(sim, body)


# ----------------------------------------------------------------------------- raw protocol


def test_subscribe_unsubscribe_list_and_errors(fast: SimExchangeServer) -> None:
    async def main() -> None:
        async with connect(fast) as ws:
            assert await request(ws, {"method": "SUBSCRIBE", "params": [
                "btcusdt@trade", "ethusdt@aggTrade"], "id": 1}) == {"result": None, "id": 1}
            assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "q2"}) == {
                "result": ["btcusdt@trade", "ethusdt@aggTrade"], "id": "q2"}
            kinds = {json.loads(t)["e"] for _, t in await data_frames(ws, 1.5)}
            assert kinds == {"trade", "aggTrade"}
            assert await request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"],
                                      "id": 3}) == {"result": None, "id": 3}
            after = [json.loads(t) for _, t in await data_frames(ws, 1.0)]
            assert after
            assert {e["e"] for e in after} == {"aggTrade"}
            for frame, code, request_id in (
                    ("{not json", 3, None),
                    ({"method": "SUBSCRIBE", "params": ["BTCUSDT@trade"], "id": 4}, 2, 4),
                    ({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 5}, 2, 5),
                    ({"method": "SUBSCRIBE", "params": ["xxxusdt@trade"], "id": 6}, 2, 6),
                    ({"method": "FLY", "id": 7}, 2, 7),
                    ({"method": "LIST_SUBSCRIPTIONS", "id": -0.5}, 2, None),
                    ({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 8}, 1, 8),
                    ({"method": "GET_PROPERTY", "params": ["colour"], "id": 9}, 0, 9)):
                reply = await request(ws, frame)
                assert reply["error"]["code"] == code, frame
                assert reply["id"] == request_id

    run(main())


def test_stream_limit_per_connection(live: SimExchangeServer) -> None:
    async def main() -> None:
        markets = await http(live, "GET", "/api/v3/exchangeInfo")
        names = [f"{m['symbol'].lower()}@{k}" for m in markets["symbols"] for k in (
            "trade", "aggTrade", "ticker", "miniTicker", "bookTicker", "kline_1m", "kline_5m",
            "kline_1h", "kline_1d", "kline_8h", "kline_3m", "kline_15m", "kline_30m",
            "kline_2h", "kline_4h", "kline_6h")]
        assert len(names) > 1024
        async with connect(live) as ws:
            reply = await request(ws, {"method": "SUBSCRIBE", "params": names[:1025], "id": 1})
            assert reply == {"error": {"code": 2, "msg": "Invalid request: too many streams"},
                             "id": 1}
            assert await request(ws, {"method": "SUBSCRIBE", "params": names[:1024],
                                      "id": 2}) == {"result": None, "id": 2}
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert listed["result"] == names[:1024]

    run(main())


def test_combined_streams_raw_paths_properties_and_microseconds(fast: SimExchangeServer) -> None:
    async def main() -> None:
        async with connect(fast, "/stream?streams=btcusdt@trade/ethusdt@miniTicker") as ws:
            frames = [json.loads(t) for _, t in await data_frames(ws, 1.3)]
            assert {f["stream"] for f in frames} == {"btcusdt@trade", "ethusdt@miniTicker"}
            for f in frames:
                assert list(f) == ["stream", "data"]
                assert f["data"]["e"] == ("trade" if f["stream"] == "btcusdt@trade"
                                          else "24hrMiniTicker")
            assert await request(ws, {"method": "GET_PROPERTY", "params": ["combined"],
                                      "id": 1}) == {"result": True, "id": 1}
            assert await request(ws, {"method": "SET_PROPERTY", "params": ["combined", False],
                                      "id": 2}) == {"result": None, "id": 2}
            raw = [json.loads(t) for _, t in await data_frames(ws, 1.0)]
            assert raw
            assert all("stream" not in f and f["e"] in ("trade", "24hrMiniTicker") for f in raw)
        async with connect(fast, "/ws/btcusdt@aggTrade?timeUnit=MICROSECOND") as ws:
            event = json.loads((await ws.receive(timeout=5)).data)
            now_us = time.time_ns() // 1000
            assert event["e"] == "aggTrade"
            assert 0 <= now_us - event["E"] < 1_000_000  # E: send time in microseconds
            assert 0 <= event["E"] - event["T"] < 1_000_000
        async with connect(fast, "/ws/btcusdt@trade") as ws:
            event = json.loads((await ws.receive(timeout=5)).data)
            assert 0 <= wall_ms() - event["E"] < 1000
            assert event["T"] <= event["E"]

    run(main())


def test_bad_upgrade_requests_are_refused(live: SimExchangeServer) -> None:
    async def main() -> None:
        for path in ("/ws/btcusdt@nonsense", "/stream?streams=BTCUSDT@trade",
                     "/ws/0?timeUnit=NANOSECOND"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                async with connect(live, path):
                    pass
            assert caught.value.status == 400
        status = (await http(live, "GET", "/api/v3/ping"))
        assert status == {}

    run(main())


# ----------------------------------------------------------------------------- faults


def test_forced_disconnect_ccxt_pro_reconnects(fast: SimExchangeServer) -> None:
    async def body(ex: Any) -> tuple[float, int]:
        await ex.watch_trades("BTC/USDT")
        await set_faults(fast, "ws_disconnect")
        dropped_at = None
        deadline = time.monotonic() + 30
        while True:
            try:
                trades = await ex.watch_trades("BTC/USDT")
            except ccxtpro.NetworkError:
                dropped_at = time.monotonic()
                continue
            if dropped_at is not None:
                return time.monotonic() - dropped_at, len(trades)
            assert time.monotonic() < deadline

    before = fast.stats()["ws"]
    reconnect_s, received = run(with_pro(fast, body))
    after = fast.stats()
    assert received > 0
    assert reconnect_s < 3.0
    assert after["faults_fired"]["ws_disconnect"] >= 1
    assert after["ws"]["disconnects_by_reason"]["fault"] > before["disconnects_by_reason"].get(
        "fault", 0)
    assert after["ws"]["connections_total"] > before["connections_total"]


def test_disconnect_count_closes_only_the_oldest(fast: SimExchangeServer) -> None:
    async def main() -> None:
        async with connect(fast, "/ws/solusdt@trade") as old, \
                connect(fast, "/ws/ethusdt@trade") as new:
            await old.receive(timeout=5)
            await new.receive(timeout=5)
            await set_faults(fast, "ws_disconnect:count=1,code=4000")
            await asyncio.sleep(0.3)
            frames = await data_frames(old, 1.0)
            assert old.closed
            assert old.close_code == 4000
            assert len(frames) < 20
            assert not new.closed
            assert await data_frames(new, 0.5)

    run(main())


def test_stall_keeps_socket_but_stops_data(fast: SimExchangeServer) -> None:
    async def main() -> tuple[float, float]:
        async with connect(fast, "/ws/btcusdt@trade") as ws:
            await ws.receive(timeout=5)
            await set_faults(fast, "ws_stall:seconds=1.2")
            started = time.monotonic()
            reply = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            replied = time.monotonic() - started
            assert reply == {"result": ["btcusdt@trade"], "id": 1}
            frames = await data_frames(ws, 2.5)
            first_data = frames[0][0] - started
            assert not ws.closed
            return replied, first_data

    replied, first_data = run(main())
    assert replied < 0.5  # control replies flow during the stall
    assert 1.0 <= first_data <= 1.8  # data resumes when the stall ends
    stats = fast.stats()
    assert stats["faults_fired"]["ws_stall"] >= 1
    assert stats["ws"]["messages_dropped"] > 0


def test_refuse_then_recover_and_ccxt_outage(fast: SimExchangeServer) -> None:
    async def raw() -> float:
        await set_faults(fast, "ws_refuse:seconds=1")
        started = time.monotonic()
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            async with connect(fast):
                pass
        assert caught.value.status == 503
        while True:
            try:
                async with connect(fast, "/ws/btcusdt@trade") as ws:
                    assert json.loads((await ws.receive(timeout=5)).data)["e"] == "trade"
                    return time.monotonic() - started
            except aiohttp.WSServerHandshakeError:
                await asyncio.sleep(0.05)

    async def outage(ex: Any) -> tuple[float, int]:
        await ex.watch_trades("ETH/USDT")
        await set_faults(fast, "ws_disconnect;ws_refuse:seconds=1.5")
        started, failures = time.monotonic(), 0
        while True:
            try:
                await ex.watch_trades("ETH/USDT")
                if failures:
                    return time.monotonic() - started, failures
            except ccxtpro.NetworkError:
                failures += 1
                await asyncio.sleep(0.1)

    recovered = run(raw())
    assert 0.9 <= recovered <= 2.0
    back_after, failures = run(with_pro(fast, outage))
    assert failures >= 2  # the drop, then refused reconnects
    assert 1.4 <= back_after <= 4.0
    stats = fast.stats()
    assert stats["ws"]["connections_refused"] >= 2
    assert stats["faults_fired"]["ws_refuse"] >= 2


def test_malformed_frames_are_counted_exactly(fast: SimExchangeServer) -> None:
    async def main() -> tuple[int, int, int]:
        async with connect(fast, "/ws/btcusdt@trade") as ws:
            await ws.receive(timeout=5)
            await set_faults(fast, "ws_malformed:count=25")
            broken = wrong = good = 0
            deadline = time.monotonic() + 10
            while good < 40 and time.monotonic() < deadline:
                text = (await ws.receive(timeout=5)).data
                try:
                    event = json.loads(text)
                except ValueError:
                    broken += 1
                    continue
                if isinstance(event.get("p"), str) and isinstance(event.get("T"), int):
                    good += 1
                else:
                    wrong += 1
            return broken, wrong, good

    broken, wrong, good = run(main())
    assert broken + wrong == 25
    assert broken > 0
    assert wrong > 0
    assert good == 40
    assert fast.stats()["faults_fired"]["ws_malformed"] == 25


def _fuzz_frames(count: int) -> list[str | bytes]:
    rng = random.Random(20240305)
    valid = json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
    makers: list[Callable[[], str | bytes]] = [
        lambda: "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(0, 60))),
        lambda: valid[: rng.randint(0, len(valid) - 1)],
        lambda: json.dumps({"method": rng.choice([1, None, [], "subscribe", "SUBSCRIBE "]),
                            "id": rng.randint(0, 9)}),
        lambda: json.dumps({"method": "SUBSCRIBE", "params": rng.choice(
            [{}, "x", [1, 2], ["BTCUSDT@trade"], ["btcusdt@kline_9m"], ["@"]]), "id": 3}),
        lambda: json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": rng.choice(
            [1.5, -(2**70), True, "x" * 40, "bad id", [], {}])}),
        lambda: json.dumps({"method": "SET_PROPERTY", "params": rng.choice(
            [["combined"], ["combined", 1], [1, True], ["x", True], []]), "id": 4}),
        lambda: "[" * rng.randint(1, 20_000),
        lambda: rng.choice(["", " ", "null", "true", "1e999", "NaN", '"str"', "{}", "[]"]),
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))),
        lambda: json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"] * 3,
                            "id": "ok1"}),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def test_ten_thousand_fuzzed_frames_do_not_hurt_other_clients(fast: SimExchangeServer) -> None:
    frames = _fuzz_frames(10_000)

    async def fuzz() -> tuple[int, int]:
        async with connect(fast) as ws:
            for frame in frames:
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
            replies = errors = 0
            while replies < len(frames):
                reply = json.loads((await ws.receive(timeout=10)).data)
                replies += 1
                errors += "error" in reply
            assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {
                "result": [], "id": 1}
            return replies, errors

    async def main() -> tuple[int, int, int, int]:
        async with connect(fast, "/ws/ethusdt@trade") as good:
            await good.receive(timeout=5)
            received = asyncio.create_task(data_frames(good, 4.0))
            replies, errors = await fuzz()
            done = time.monotonic()
            async with connect(fast) as big:  # an oversize frame closes only its sender
                await big.send_str("{" + " " * 70_000 + "}")
                msg = await big.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.CLOSE
                assert msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            frames_seen = await received
            # Still subscribed after the fuzzing, however long that took on a busy machine: the
            # first window may end before it does, so listen once more afterwards.
            later = await data_frames(good, 2.0)
            after = sum(1 for t, _ in frames_seen if t > done) + len(later)
            return replies, errors, len(frames_seen), after

    replies, errors, seen, after = run(main())
    assert replies == 10_000
    assert 9_000 < errors < 10_000  # the valid UNSUBSCRIBEs are answered with a result
    assert seen > 0
    assert after > 0  # the well-formed subscriber kept receiving after the fuzzing
    stats = fast.stats()["ws"]
    assert stats["bad_frames"] >= errors
    assert run(http(fast, "GET", "/api/v3/ping")) == {}


def test_burst_sends_held_back_trades_at_once(fast: SimExchangeServer) -> None:
    async def main() -> list[tuple[float, dict[str, Any]]]:
        async with connect(fast, "/ws/btcusdt@trade") as ws:
            await data_frames(ws, 0.3)
            await set_faults(fast, "ws_burst:ticks=200,symbol=BTCUSDT")
            frames = await data_frames(ws, 1.5)
            await set_faults(fast, "")
            return [(t, json.loads(text)) for t, text in frames]

    frames = run(main())
    gaps = [(b[0] - a[0], i + 1) for i, (a, b) in enumerate(itertools.pairwise(frames))]
    gap, start = max(gaps)
    assert gap >= 0.4  # trades were held back ...
    burst = frames[start:start + 200]
    assert len(burst) == 200
    assert burst[-1][0] - burst[0][0] < 0.1  # ... then arrived at once
    assert burst[-1][1]["T"] - burst[0][1]["T"] >= 400  # with their own trade times
    assert burst[-1][1]["E"] - burst[0][1]["E"] <= 20
    assert fast.stats()["faults_fired"]["ws_burst"] == 1


# ----------------------------------------------------------------------------- keep-alive


def test_pings_pongs_and_lifetime(short_lived: SimExchangeServer) -> None:
    async def silent() -> tuple[list[bytes], float, int | None]:
        started = time.monotonic()
        pings: list[bytes] = []
        async with connect(short_lived, autoping=False) as ws:
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.PING:
                    pings.append(msg.data)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    return pings, time.monotonic() - started, ws.close_code

    async def polite() -> tuple[float, int | None, bytes]:
        started = time.monotonic()
        async with connect(short_lived, autoping=True) as ws:
            await ws.ping(b"hello")
            pong = b""
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.PONG:
                    pong = msg.data
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                    return time.monotonic() - started, ws.close_code, pong

    async def main() -> tuple[Any, Any]:
        return await asyncio.gather(silent(), polite())

    (pings, dropped_after, code), (lived, lifetime_code, pong) = run(main())
    assert len(pings) >= 2
    assert all(p.isdigit() for p in pings)
    assert 0.6 <= dropped_after <= 1.3
    assert code == 1008
    assert 1.4 <= lived <= 2.2
    assert lifetime_code == 1000
    assert pong in (b"hello", b"")
    reasons = short_lived.stats()["ws"]["disconnects_by_reason"]
    assert reasons["pong_timeout"] >= 1
    assert reasons["lifetime"] >= 1


def test_stats_count_connections_subscriptions_and_messages(fast: SimExchangeServer) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        await http(fast, "POST", "/_sim/reset")
        async with connect(fast, "/stream?streams=btcusdt@trade/btcusdt@bookTicker") as ws:
            await data_frames(ws, 0.8)
            during = (await http(fast, "GET", "/_sim/stats"))["ws"]
        await asyncio.sleep(0.2)
        return during, (await http(fast, "GET", "/_sim/stats"))["ws"]

    during, after = run(main())
    assert during["connections"] == 1
    assert during["subscriptions"] == 2
    assert during["connections_total"] == 1
    assert during["messages_sent"] > 0
    assert abs(during["last_send_us"] - time.time_ns() // 1000) < 5_000_000
    assert after["connections"] == 0
    assert after["messages_sent"] >= during["messages_sent"]
