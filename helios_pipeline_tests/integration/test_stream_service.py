"""StreamService end to end: the simulator's websockets, the real ccxt.pro client, real Redis.

The simulator sends 5 trades per second per symbol (``WsConfig``), tickers every second and a
book top whenever it moves. Faults are set on it while the service runs; recovery times are
measured and asserted (within 30 s of the exchange recovering). Every acknowledged tick is
logged by the service (``ack_log``) and looked up in Redis afterwards.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import MINUTE_MS
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.queue import TickQueue
from helios_pipeline.realtime.runner import top_symbols
from helios_pipeline.realtime.service import StreamService
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
from helios_pipeline.storage.hot.codec import decode_tick
from helios_pipeline.storage.hot.keys import health_key, stream_key
from helios_pipeline.storage.hot.live_candles import load_live_candles
from helios_pipeline.storage.hot.store import HotStore, seq_from_stream_id
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline_tests.conftest import RedisServer

T = TypeVar("T")
log = logging.getLogger(__name__)
Identity = tuple[str, str, int]
RECOVERY_LIMIT_S = 30.0
FEW = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")


@pytest.fixture(scope="module")
def exchange() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, ws_config=WsConfig(trades_per_second=5.0)) as sim:
        yield sim


@pytest.fixture
def ws_sim(exchange: SimExchangeServer) -> Iterator[SimExchangeServer]:
    exchange.set_faults("")
    yield exchange
    exchange.set_faults("")


def config(sim: SimExchangeServer, tmp_path: Path, redis_url: str, symbols: tuple[str, ...],
           **overrides: Any) -> StreamConfig:
    return StreamConfig(symbols=symbols, base_url=sim.base_url, data_dir=tmp_path / "data",
                        redis_url=redis_url, ack_log=tmp_path / "acks.log",
                        health_interval_s=0.2, **overrides)


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout_s``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"Not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def with_service(cfg: StreamConfig, body: Callable[[StreamService], Awaitable[T]]) -> T:
    async def main() -> T:
        service = StreamService(cfg)
        await service.start()
        try:
            return await body(service)
        finally:
            await stop_or_explain(service)

    return asyncio.run(main())


async def stop_or_explain(service: StreamService, limit_s: float = 60.0) -> None:
    """``service.stop()``, failing with every task's stack if it takes over ``limit_s``."""
    stopping = asyncio.ensure_future(service.stop())
    done, _ = await asyncio.wait({stopping}, timeout=limit_s)
    if stopping in done:
        stopping.result()
        return
    stacks = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(file=stacks)
    pytest.fail(f"StreamService.stop() did not finish within {limit_s} s:\n{stacks.getvalue()}")


def acked(path: Path) -> list[Identity]:
    lines = path.read_text().split("\n")[:-1]  # a torn last line has no newline
    return [(s, k, int(q)) for s, k, q in (line.split(" ") for line in lines)]


def stored(url: str, symbols: tuple[str, ...]) -> tuple[Counter[Identity], list[Tick]]:
    client = redis.Redis.from_url(url)
    counts: Counter[Identity] = Counter()
    ticks: list[Tick] = []
    try:
        for symbol in symbols:
            for kind in ("trade", "book", "ticker"):
                for entry_id, fields in client.xrange(stream_key("binance", symbol, kind)):
                    tick = decode_tick(fields[b"t"])
                    assert seq_from_stream_id(entry_id) == tick.seq
                    counts[(tick.symbol, tick.kind, tick.seq)] += 1
                    ticks.append(tick)
    finally:
        client.close()
    return counts, ticks


def assert_every_ack_stored_once(url: str, log: Path, symbols: tuple[str, ...]) -> int:
    acks = acked(log)
    counts, ticks = stored(url, symbols)
    assert acks
    assert len(set(acks)) == len(acks)
    missing = [a for a in acks if counts[a] != 1]
    assert missing == []
    assert max(counts.values()) == 1
    trade_ids = Counter((t.symbol, t.event_id) for t in ticks if t.kind == "trade")
    assert max(trade_ids.values()) == 1  # no trade stored twice under another seq
    return len(acks)


def assert_every_tick_accounted_for(health: dict[str, object]) -> None:
    """At rest: each received tick is valid, rejected, shed or failed; messages add up."""
    n = {k: int(str(health[k])) for k in ("messages", "ticks", "malformed", "valid", "rejected",
                                           "shed", "write_failed_ticks", "queue_depth",
                                           "in_flight", "quarantined")}
    assert n["queue_depth"] == n["in_flight"] == 0
    assert n["messages"] == n["ticks"] + n["malformed"]
    assert n["ticks"] == n["valid"] + n["rejected"] + n["shed"] + n["write_failed_ticks"]
    assert n["quarantined"] == n["rejected"] + n["malformed"]


def feed_status(service: StreamService) -> dict[str, Any]:
    return {f.name: f.status for f in service.feeds}


# ----------------------------------------------------------------------------- the happy path


def test_55_symbols_stream_into_redis(ws_sim: SimExchangeServer, tmp_path: Path,
                                      redis_url: str) -> None:
    symbols = tuple(asyncio.run(top_symbols("binance", ws_sim.base_url, 55)))
    assert len(symbols) == 55
    cfg = config(ws_sim, tmp_path, redis_url, symbols)
    hot = HotStore(redis_url)

    async def body(service: StreamService) -> dict[str, Any]:
        def all_there() -> bool:
            prices = hot.latest_many(list(symbols))
            return all(p is not None for p in prices.values()) and all(
                hot.last_id(s, kind) is not None for s in symbols for kind in ("trade", "book"))

        await until(all_there, 20, "every symbol has a latest ticker, trades and book tops")
        await asyncio.sleep(1.0)
        stats = ws_sim.stats()["ws"]
        published = hot.client.hgetall(health_key("binance"))
        return {"stats": stats, "published": published}

    seen = with_service(cfg, body)
    assert seen["stats"]["connections"] == 3  # one per kind for all 55 symbols
    assert seen["stats"]["subscriptions"] == 3 * 55
    for symbol in symbols:
        price = hot.latest_price(symbol)
        assert price is not None
        assert price > 0
        latest = hot.latest(symbol)
        assert latest is not None
        assert latest.kind == "ticker"
        assert latest.bid is not None
        assert latest.ask is not None
        assert latest.bid <= latest.ask
        assert hot.recent(symbol, "trade", 0)
    published = {k.decode(): v.decode() for k, v in seen["published"].items()}
    assert published["status"] == "running"
    assert 0 <= int(published["lag_ms"]) < 5_000
    assert int(published["valid"]) > 55
    assert int(published["reconnects"]) == 0
    assert set(json.loads(published["symbols"])) == set(symbols)
    assert json.loads(published["writer"])["redis_up"] is True
    final = {k.decode(): v.decode() for k, v in hot.client.hgetall(health_key("binance")).items()}
    assert final["status"] == "stopped"
    assert assert_every_ack_stored_once(redis_url, tmp_path / "acks.log", symbols) > 500
    hot.close()


def test_health_accounts_for_every_tick(ws_sim: SimExchangeServer, tmp_path: Path,
                                        redis_url: str) -> None:
    cfg = config(ws_sim, tmp_path, redis_url, FEW)

    async def body(service: StreamService) -> StreamService:
        await until(lambda: service.stats.ticks > 200, 15, "200 ticks")
        return service

    service = with_service(cfg, body)
    health = service.health()
    assert_every_tick_accounted_for(health)
    assert health["status"] == "stopped"
    assert int(str(health["valid"])) == len(acked(tmp_path / "acks.log"))


# ----------------------------------------------------------------------------- bad data


def test_malformed_frames_are_counted_quarantined_and_the_stream_goes_on(
        ws_sim: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    cfg = config(ws_sim, tmp_path, redis_url, FEW)

    async def body(service: StreamService) -> tuple[int, int]:
        await until(lambda: service.stats.ticks > 50, 15, "first ticks")
        ws_sim.set_faults("ws_malformed:rate=0.2,seed=7")
        await until(lambda: service.stats.malformed >= 60, 20, "60 malformed frames")
        ws_sim.set_faults("")
        fired = ws_sim.stats()["faults_fired"]["ws_malformed"]
        valid_after = service.pipeline.valid
        await until(lambda: service.pipeline.valid > valid_after + 50, 15, "valid ticks again")
        return fired, service.stats.malformed

    fired, malformed = with_service(cfg, body)
    assert malformed == fired  # every broken frame the exchange sent was noticed, none twice
    records = [r for s in FEW for r in QuarantineStore(cfg.data_dir).load(
        s, *_days())]
    assert records
    assert all(r.rules == ("malformed_row",) and r.values["error"] for r in records)
    assert {r.kind for r in records} <= {"trade", "book", "ticker"}
    assert any("not an exact" in r.values["error"] or "raw field types" in r.values["error"]
               for r in records)  # JSON numbers where exact decimal strings belong
    assert any("JSONDecodeError" in r.values["error"] for r in records)  # truncated frames
    assert_every_ack_stored_once(redis_url, tmp_path / "acks.log", FEW)


def _days() -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(tz=UTC).date()
    return today - timedelta(days=1), today + timedelta(days=1)


# ----------------------------------------------------------------------------- reconnects


def test_forced_disconnect_resubscribes_and_flows_within_30s(
        ws_sim: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    cfg = config(ws_sim, tmp_path, redis_url, FEW)

    async def body(service: StreamService) -> tuple[float, dict[str, Any], dict[str, Any]]:
        await until(lambda: all(s.connected for s in feed_status(service).values()), 15,
                    "every feed delivering")
        ticks_before = service.stats.ticks
        ws_sim.set_faults("ws_disconnect:count=3")
        recovered = await until(
            lambda: all(s.reconnects >= 1 and s.connected for s in feed_status(service).values())
            and service.stats.ticks > ticks_before + 20, RECOVERY_LIMIT_S,
            "resubscribed and flowing after the disconnect")
        return recovered, ws_sim.stats()["ws"], feed_status(service)

    recovered, stats, feeds = with_service(cfg, body)
    assert recovered < RECOVERY_LIMIT_S
    assert stats["disconnects_by_reason"]["fault"] >= 3
    assert stats["subscriptions"] == 3 * len(FEW)  # everything subscribed again
    for status in feeds.values():
        assert status.last_recovery_ms is not None
        assert 0 <= status.last_recovery_ms < RECOVERY_LIMIT_S * 1000
        assert "closed" in status.last_error
    log.info("disconnect recovery: %.2f s; per feed (ms): %s", recovered,
             {n: s.last_recovery_ms for n, s in feeds.items()})


def test_refused_reconnects_recover_within_30s_of_the_outage_end(
        ws_sim: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    cfg = config(ws_sim, tmp_path, redis_url, FEW)
    outage_s = 4.0

    async def body(service: StreamService) -> tuple[float, int]:
        await until(lambda: all(s.connected for s in feed_status(service).values()), 15,
                    "every feed delivering")
        ws_sim.set_faults(f"ws_disconnect:count=3;ws_refuse:seconds={outage_s}")
        ends = time.monotonic() + outage_s
        await until(lambda: not any(s.connected for s in feed_status(service).values()), 5,
                    "every feed lost")
        await asyncio.sleep(max(0.0, ends - time.monotonic()))
        ticks = service.stats.ticks
        back = await until(
            lambda: all(s.connected for s in feed_status(service).values())
            and service.stats.ticks > ticks + 10, RECOVERY_LIMIT_S, "flowing after the outage")
        return back, sum(s.reconnects for s in feed_status(service).values())

    back_after_end, reconnects = with_service(cfg, body)
    assert back_after_end < RECOVERY_LIMIT_S
    assert reconnects > 3  # refused attempts, backed off, then success
    assert ws_sim.stats()["ws"]["connections_refused"] >= 3
    log.info("refuse outage %.1f s: data again %.2f s after it ended, %d resubscriptions",
             outage_s, back_after_end, reconnects)


def test_watchdog_reconnects_a_silently_stalled_feed(
        ws_sim: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    cfg = config(ws_sim, tmp_path, redis_url, FEW, stall_timeout_s=1.5)

    async def body(service: StreamService) -> tuple[float, int]:
        await until(lambda: all(s.connected for s in feed_status(service).values()), 15,
                    "every feed delivering")
        ws_sim.set_faults("ws_stall:seconds=4")
        ends = time.monotonic() + 4
        await until(lambda: service.health()["stalls"] != 0, 5, "the watchdog to notice")
        await asyncio.sleep(max(0.0, ends - time.monotonic()))
        ticks = service.stats.ticks
        back = await until(lambda: service.stats.ticks > ticks + 10, RECOVERY_LIMIT_S,
                           "flowing after the stall")
        return back, int(str(service.health()["stalls"]))

    back, stalls = with_service(cfg, body)
    assert stalls >= 3  # each feed was forced to reconnect at least once
    assert back < RECOVERY_LIMIT_S
    log.info("stall: data again %.2f s after it ended (%d forced reconnects)", back, stalls)


# ----------------------------------------------------------------------------- durability


def test_redis_outage_mid_stream_loses_nothing_acknowledged(
        ws_sim: SimExchangeServer, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    cfg = config(ws_sim, tmp_path, redis_url, FEW)

    async def body(service: StreamService) -> tuple[int, int, bool]:
        await until(lambda: service.pipeline.valid > 100, 15, "100 acknowledged ticks")
        redis_server.stop()
        before = service.pipeline.valid
        await asyncio.sleep(3.0)
        writer = service.pipeline.health()["writer"]
        assert isinstance(writer, dict)
        during = service.pipeline.valid - before
        redis_down = writer["redis_up"] is False
        redis_server.start()
        await until(lambda: _pending(service) == 0, 20, "Redis caught up after the restart")
        return during, before, redis_down

    during, before, redis_down = with_service(cfg, body)
    assert redis_down
    assert during > 50  # acknowledging went on into the WAL while Redis was down
    total = assert_every_ack_stored_once(redis_url, tmp_path / "acks.log", FEW)
    assert total >= before + during


def test_a_connection_that_never_closes_does_not_hold_up_the_stop(
        ws_sim: SimExchangeServer, tmp_path: Path, redis_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """An exchange that never completes the close handshake: the writer still flushes."""
    cfg = config(ws_sim, tmp_path, redis_url, FEW[:2])

    async def never_closes() -> None:
        await asyncio.Event().wait()

    async def main() -> str:
        service = StreamService(cfg)
        await service.start()
        await until(lambda: service.pipeline.valid > 20, 15, "20 acknowledged ticks")
        stuck = service.feeds[0].exchange
        really_close = stuck.close
        stuck.close = never_closes  # the one connection whose close never returns
        with caplog.at_level(logging.WARNING, logger="helios_pipeline.realtime.service"):
            await asyncio.wait_for(service.stop(timeout_s=2.0), 30.0)
        for feed in service.feeds[1:]:  # the others closed as usual
            assert not feed.exchange.clients
        await really_close()  # (so that nothing is left to the garbage collector)
        return service.status

    assert asyncio.run(main()) == "stopped"
    warnings = [r.getMessage() for r in caplog.records if "did not close within" in r.getMessage()]
    assert len(warnings) == 1
    assert "never_closes" in warnings[0]  # the warning shows where the stop was stuck
    assert_every_ack_stored_once(redis_url, tmp_path / "acks.log", FEW[:2])


def _pending(service: StreamService) -> int:
    writer = service.pipeline.health()["writer"]
    assert isinstance(writer, dict)
    return int(writer["pending"])


# ----------------------------------------------------------------------------- backpressure


def tick(symbol: str, kind: str, n: int) -> Tick:
    return Tick("binance", symbol, kind, n, n * 1000)  # type: ignore[arg-type]


def test_queue_sheds_oldest_quotes_first_then_trades_beyond_the_headroom() -> None:
    shed: list[Tick] = []
    queue = TickQueue(3, trade_headroom=2, on_shed=shed.append)
    for n, kind in enumerate(["book", "trade", "ticker"]):
        queue.offer(tick("A/USDT", kind, n))
    queue.offer(tick("B/USDT", "trade", 3))  # full: the oldest quote (book 0) goes
    queue.offer(tick("B/USDT", "book", 4))  # full: the oldest quote (ticker 2) goes
    queue.offer(tick("B/USDT", "trade", 5))  # full: the oldest quote (book 4) goes
    assert [(t.kind, t.exchange_ts_ms) for t in shed] == [("book", 0), ("ticker", 2), ("book", 4)]
    queue.offer(tick("A/USDT", "ticker", 6))  # full of trades: the new quote is shed itself
    queue.offer(tick("A/USDT", "trade", 7))  # trades use the headroom ...
    queue.offer(tick("A/USDT", "trade", 8))
    assert len(queue) == 5
    queue.offer(tick("A/USDT", "trade", 9))  # ... and beyond it the oldest trade goes
    assert [(t.kind, t.exchange_ts_ms) for t in shed[3:]] == [("ticker", 6), ("trade", 1)]
    assert (queue.shed_quotes, queue.shed_trades, queue.shed_total) == (4, 1, 5)
    assert queue.shed == {"A/USDT": Counter({"book": 1, "ticker": 2, "trade": 1}),
                          "B/USDT": Counter({"book": 1})}
    assert [t.exchange_ts_ms for t in queue.take(10)] == [3, 5, 7, 8, 9]
    assert len(queue) == 0
    assert queue.offered == 10


def test_tiny_queue_sheds_and_counts_every_tick(ws_sim: SimExchangeServer, tmp_path: Path,
                                               redis_url: str) -> None:
    symbols = tuple(asyncio.run(top_symbols("binance", ws_sim.base_url, 30)))
    cfg = config(ws_sim, tmp_path, redis_url, symbols, queue_size=4, trade_headroom=4,
                 batch_max=2)

    async def body(service: StreamService) -> None:
        await until(lambda: service.stats.ticks > 100, 15, "first ticks")
        # Each symbol holds back its next 25 trades (5 s at 5 trades/s) and then sends them at
        # once: a flood for a queue of 4 + 4. Re-armed until trades and quotes were both shed.
        deadline = time.monotonic() + 60
        while not (service.queue.shed_trades > 0 and service.queue.shed_quotes > 0):
            if time.monotonic() > deadline:
                pytest.fail(f"Not within 60 s: trades and quotes shed ({service.queue.shed_trades}"
                            f" trades, {service.queue.shed_quotes} quotes)")
            ws_sim.set_faults("ws_burst:ticks=25")
            await asyncio.sleep(6)

    service = StreamService(cfg)

    async def main() -> None:
        await service.start()
        try:
            await body(service)
        finally:
            await service.stop()

    asyncio.run(main())
    health = service.health()
    assert_every_tick_accounted_for(health)
    assert int(str(health["shed"])) == int(str(health["shed_trades"])) + int(
        str(health["shed_quotes"]))
    per_symbol = health["symbols"]
    assert isinstance(per_symbol, dict)
    assert sum(sum(s["shed"].values()) for s in per_symbol.values()) == health["shed"]
    assert_every_ack_stored_once(redis_url, tmp_path / "acks.log", symbols)


# ----------------------------------------------------------------------------- live candles

WARP = 30  # the market clock runs 30x: a minute every 2 s
RATES = {"BTCUSDT": 2.0, "ETHUSDT": 1.0, "XRPUSDT": 0.05}  # per market second


@pytest.fixture(scope="module")
def warp() -> Iterator[tuple[SimExchangeServer, Callable[[], int]]]:
    """A simulator whose market clock, starting now, runs 30x; the same clock in ns."""
    origin = time.time_ns()

    def clock_ns() -> int:
        return origin + (time.time_ns() - origin) * WARP

    config = WsConfig(symbol_trades_per_second=RATES, ticker_push_s=30.0, kline_push_s=60.0)
    with SimExchangeServer(port=0, now_ms=lambda: clock_ns() // 1_000_000,
                           ws_config=config) as sim:
        yield sim, clock_ns


def rest_kline(sim: SimExchangeServer, storage_id: str, open_ms: int) -> list[Any]:
    import urllib.request

    url = (f"{sim.api_url}/klines?symbol={storage_id}&interval=1m&startTime={open_ms}&limit=1")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local simulator
        rows: list[list[Any]] = json.loads(response.read())
    assert rows[0][0] == open_ms
    return rows[0]


def test_live_candles_close_on_the_clock_and_reconcile_with_rest_klines(
        warp: tuple[SimExchangeServer, Callable[[], int]], tmp_path: Path, redis_url: str) -> None:
    sim, clock_ns = warp
    symbols = ("BTC/USDT", "ETH/USDT", "XRP/USDT")
    cfg = config(sim, tmp_path, redis_url, symbols, kinds=("trade",), candle_check_s=0.05)
    client = redis.Redis.from_url(redis_url)
    hot = HotStore(redis_url)

    def candles(symbol: str) -> list[LiveCandle]:
        return load_live_candles(client, "binance", symbol)

    async def main() -> StreamService:
        service = StreamService(cfg, clock_ns=clock_ns)
        await service.start()
        try:  # four market minutes closed after the first (partial) one
            await until(lambda: all(len(candles(s)) >= 5 for s in symbols), 30, "5 candles each")
        finally:
            await service.stop()
        return service

    service = asyncio.run(main())
    for symbol, storage_id in zip(symbols, RATES, strict=True):
        stored = candles(symbol)
        assert service.started_at_ms is not None
        start_minute = service.started_at_ms // MINUTE_MS * MINUTE_MS
        # The minute the service started in is partial. It is stored only if a trade came after
        # the feed connected (not when the connection came after the minute's last trade), and
        # then it must not claim to be complete.
        assert stored[0].open_ms >= start_minute
        assert [c.complete for c in stored if c.open_ms == start_minute] in ([], [False])
        complete = [c for c in stored if c.complete]
        assert len(complete) >= 3
        for candle in complete:
            row = rest_kline(sim, storage_id, candle.open_ms)
            assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == tuple(
                Decimal(x) for x in row[1:6]), (symbol, candle.open_ms)
            trades = [t for t in hot.recent(symbol, "trade", 0)
                      if candle.open_ms <= t.exchange_ts_ms < candle.open_ms + MINUTE_MS]
            assert candle.trades == len(trades)  # exactly the stored trades of the minute
            assert candle.volume == sum((t.qty for t in trades if t.qty), Decimal(0))
            assert candle.trades >= round(RATES[storage_id] * 60)  # (>= 4 kept for o/h/l/c)
            assert (candle.version, candle.amended) == (1, False)
        assert [c.open_ms for c in stored] == list(range(stored[0].open_ms, stored[-1].open_ms
                                                         + MINUTE_MS, MINUTE_MS))
    # XRP trades at 7.5, 22.5, 37.5 and 52.5 s of each minute: its minutes were closed by the
    # clock, after their end and before the next minute's first trade could have closed them.
    for candle in [c for c in candles("XRP/USDT") if c.complete]:
        assert candle.open_ms + MINUTE_MS <= candle.emitted_ms < candle.open_ms + MINUTE_MS + 7_500
    health = service.health()
    assert health["late_trades"] == 0
    # Every stored candle was emitted: closed (the complete ones as version 1, checked above),
    # or, for a minute the clock closed before its first trade arrived (the partial start
    # minute can be one), created by an amendment.
    stored_all = [c for s in symbols for c in candles(s)]
    closed = int(str(health["candles_closed"]))
    assert closed >= sum(1 for c in stored_all if c.complete)
    assert closed + int(str(health["candles_amended"])) >= len(stored_all) >= 15
    client.close()
    hot.close()
