"""The stream service watches a reference venue: divergent ticks flagged, one alert per episode.

Real parts: two simulated venues over the same simulated market (Binance with websockets, the
primary; OKX over REST, the reference, as ``HELIOS_REFERENCE_EXCHANGE=okx`` sets it up), the
real ccxt/ccxt.pro clients, a real redis-server and a real HTTP webhook receiver. The OKX
simulator's ``divergence`` fault moves BTC/USDT 7 % for as long as it is set; ETH/USDT never
diverges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from helios_pipeline.defs.realtime import RealtimeMarketDataResource
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.exchanges.config import ExchangeConfig
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.divergence_watch import RULE
from helios_pipeline.realtime.service import StreamService
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
from helios_pipeline.storage.hot.codec import decode_tick
from helios_pipeline.storage.hot.keys import stream_key
from helios_pipeline_tests.webhook_receiver import Receiver

SYMBOLS = ("BTC/USDT", "ETH/USDT")
LIMIT_S = 60.0


@pytest.fixture(scope="module")
def binance() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, ws_config=WsConfig(trades_per_second=5.0)) as sim:
        yield sim


@pytest.fixture(scope="module")
def okx() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, venue="okx") as sim:
        yield sim


def stored_ticks(url: str, symbol: str) -> list[Tick]:
    client = redis.Redis.from_url(url)
    try:
        return [decode_tick(fields[b"t"]) for kind in ("trade", "ticker")
                for _, fields in client.xrange(stream_key("binance", symbol, kind))]
    finally:
        client.close()


def acked(path: Path) -> set[tuple[str, str, int]]:
    """Ticks acknowledged so far (validated and durable): ``(symbol, kind, seq)``."""
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return {(s, k, int(q)) for s, k, q in (line.split(" ") for line in lines)}


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"Not within {LIMIT_S} s: {what}")
        await asyncio.sleep(0.05)


def test_divergence_is_flagged_on_ticks_and_alerted_once_per_episode(
        binance: SimExchangeServer, okx: SimExchangeServer, tmp_path: Path,
        redis_url: str) -> None:
    query = MarketDataQuery(tmp_path / "data", redis_url=redis_url, cache_ttl_s=0)

    def state(symbol: str) -> str | None:
        found = query.divergence(symbol)
        return None if found is None else found.state

    with Receiver() as receiver:
        config = StreamConfig(
            symbols=SYMBOLS, base_url=binance.base_url, kinds=("trade", "ticker"),
            data_dir=tmp_path / "data", redis_url=redis_url, candles=False,
            ack_log=tmp_path / "acks.log",
            reference=ExchangeConfig("okx", okx.base_url, qualifier="okx"),
            reference_poll_s=0.5, divergence_recovery_s=2.0, alert_webhook_url=receiver.url())

        async def main() -> tuple[dict[str, float], set[tuple[str, str, int]]]:
            service = StreamService(config)
            await service.start()
            marks: dict[str, float] = {}
            agreed: set[tuple[str, str, int]] = set()
            try:
                await until(lambda: state("BTC/USDT") == "agreeing" == state("ETH/USDT"),
                            "both symbols compared while the venues agree")
                agreeing = query.divergence("BTC/USDT")
                assert agreeing is not None
                assert agreeing.divergence < 0.01
                assert receiver.bodies == []
                minute = datetime.now(UTC) - timedelta(minutes=1)
                marks["fault_set"] = time.time()
                agreed = acked(tmp_path / "acks.log")  # validated before the fault exists
                okx.set_faults(f"divergence:symbol=BTCUSDT,start={minute:%Y-%m-%dT%H:%M},"
                               "minutes=10,factor=1.07")
                await until(lambda: state("BTC/USDT") == "diverging", "the episode opens")
                opened = query.divergence("BTC/USDT")
                assert opened is not None
                assert opened.reference == "okx"
                assert opened.divergence > 0.05
                assert float(opened.reference_price / opened.price) == pytest.approx(1.07, abs=0.01)
                polls = service.divergence.polls if service.divergence else 0
                await until(lambda: service.divergence is not None
                            and service.divergence.polls >= polls + 6,
                            "six more polls while the venues diverge")
                assert len(receiver.bodies) == 1  # one alert however many polls and ticks
                marks["fault_cleared"] = time.time()
                okx.set_faults("")
                await until(lambda: len(receiver.bodies) >= 2, "the recovery alert")
                marks["recovered"] = time.time()
                valid = service.pipeline.valid
                await until(lambda: service.pipeline.valid >= valid + 20,
                            "more ticks once the venues agree again")
                assert state("BTC/USDT") == "agreeing"
                assert state("ETH/USDT") == "agreeing"
                health = service.health()["divergence"]
            finally:
                okx.set_faults("")
                await service.stop()
            assert isinstance(health, dict)
            assert (health["episodes"], health["diverging"], health["poll_failures"]) == (
                1, [], 0)
            return marks, agreed

        try:
            marks, agreed = asyncio.run(main())
        finally:
            query.close()
        bodies = list(receiver.bodies)

    assert [(b["rule"], b["severity"], b["symbol"]) for b in bodies] == [
        (RULE, "warning", "binance:BTC/USDT"),
        (f"{RULE}.recovered", "info", "binance:BTC/USDT")]
    assert 0.06 < bodies[0]["value"] < 0.08
    assert "okx" in bodies[0]["message"]

    btc = stored_ticks(redis_url, "BTC/USDT")
    flagged = [t for t in btc if RULE in t.flags]
    assert flagged  # ticks during the episode carry the flag...
    for tick in flagged:  # validated after the fault was set, received before the recovery
        assert (tick.symbol, tick.kind, tick.seq) not in agreed
        assert tick.received_ts_us / 1e6 < marks["recovered"]
    before = [t for t in btc if (t.symbol, t.kind, t.seq) in agreed]
    after = [t for t in btc if t.received_ts_us / 1e6 > marks["recovered"]]
    assert before
    assert after
    assert all(RULE not in t.flags for t in before + after)  # ...and none while they agree
    eth = stored_ticks(redis_url, "ETH/USDT")
    assert eth
    assert all(RULE not in t.flags for t in eth)

    # Dagster's realtime resource reads the same state (it expires once comparisons stop).
    last = RealtimeMarketDataResource(redis_url=redis_url).divergence("BTC/USDT")
    assert last is not None
    assert (last.state, last.reference, last.threshold) == ("agreeing", "okx", 0.05)
    assert last.divergence < 0.01
