"""10,000 fuzzed websocket frames into the real ccxt.pro client: the stream service holds.

A websocket server of this test speaks Binance's stream protocol to ccxt.pro (it answers
``SUBSCRIBE`` and sends to each connection the streams it subscribed) and feeds it a seeded mix
of frames, each labelled with what the service must make of it:

* ``valid``: well-formed trades, book tops and tickers -> stored in Redis (each one, by id);
* ``rejected``: well-formed frames with values the scalar validator refuses (NaN, negative or
  zero prices, 50x spikes, future or out-of-order times, negative quantities) -> quarantined with
  the rule, never stored;
* ``malformed``: not JSON, truncated JSON, JSON numbers or wrong types where Binance sends exact
  decimal strings, unknown symbols, missing fields, binary junk, a 200 KB frame -> counted and
  quarantined (or, with no symbol to file them under, logged);
* ``ignored``: JSON that is not market data (replies, unknown events) -> nothing.

Markets come from the simulated exchange's REST API; only the websocket URL points here
(``StreamConfig.ws_url``). Expected counts are asserted exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import WSMsgType, web

from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.service import StreamService
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.hot.codec import decode_tick
from helios_pipeline.storage.hot.keys import stream_key
from helios_pipeline.storage.quarantine import QuarantineStore

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT")
BASE = {"BTCUSDT": Decimal("60000.00"), "ETHUSDT": Decimal("3000.00"),
        "SOLUSDT": Decimal("150.000"), "XRPUSDT": Decimal("0.52000")}
FRAMES = {"trade": 6_000, "bookTicker": 2_500, "ticker": 1_500}  # 10,000 in all
SPACING = 7  # frames with odd but finite prices are this far apart per symbol and stream
Frame = str | bytes
Maker = Callable[[int], Frame]  # now (ms) -> frame


@dataclass
class Plan:
    """What was sent, by outcome, and the ids of the frames that must be stored."""

    sent: Counter[str] = field(default_factory=Counter)
    valid_ids: dict[str, set[int]] = field(default_factory=lambda: {
        "trade": set(), "book": set(), "ticker": set()})
    rejected_ids: set[int] = field(default_factory=set)
    malformed_symbols: Counter[str] = field(default_factory=Counter)


class FuzzStream:
    """One stream kind's frames: a labelled, seeded mix (see the module docstring)."""

    def __init__(self, stream: str, rng: random.Random, plan: Plan) -> None:
        self.stream, self.rng, self.plan = stream, rng, plan
        self.ids = {s: 1_000_000 * (i + 1) for i, s in enumerate(BASE)}
        self.since_odd = dict.fromkeys(BASE, 0)
        self.price = dict(BASE)

    def next(self) -> tuple[str, Maker]:
        roll = self.rng.random()
        if roll < 0.55:
            return self._valid()
        if roll < 0.70:
            return self._rejected()
        if roll < 0.95:
            return "malformed", self._malformed()
        return "ignored", self._ignored()

    # --------------------------------------------------------------- frames

    def _symbol(self) -> str:
        return self.rng.choice(list(BASE))

    def _walk(self, sid: str) -> Decimal:
        step = Decimal(self.rng.randint(-5, 5)) / 10_000
        self.price[sid] = (self.price[sid] * (1 + step)).quantize(BASE[sid])
        return self.price[sid]

    def _event(self, sid: str, now: int, **changes: Any) -> dict[str, Any]:
        self.ids[sid] += 1
        ident = self.ids[sid]
        price = self._walk(sid)
        if self.stream == "trade":
            event: dict[str, Any] = {"e": "trade", "E": now, "s": sid, "t": ident,
                                     "p": str(price), "q": "0.125", "T": now, "m": True,
                                     "M": True}
        elif self.stream == "bookTicker":
            event = {"u": ident, "s": sid, "b": str(price), "B": "1.5",
                     "a": str(price + _tick(sid)), "A": "2.5"}
        else:
            event = {"e": "24hrTicker", "E": now, "s": sid, "p": "1.0", "P": "0.1", "w": "1",
                     "x": str(price), "c": str(price), "Q": "0.1", "b": str(price),
                     "B": "1", "a": str(price + _tick(sid)), "A": "1", "o": str(price),
                     "h": str(price + 10 * _tick(sid)), "l": str(price - 10 * _tick(sid)),
                     "v": "12345.5", "q": "1000000.0", "O": now - 86_400_000, "C": now,
                     "F": 1, "L": ident, "n": ident}
        event.update(changes)
        return event

    def _id_key(self) -> str:
        return {"trade": "t", "bookTicker": "u", "ticker": "L"}[self.stream]

    def _kind(self) -> str:
        return {"trade": "trade", "bookTicker": "book", "ticker": "ticker"}[self.stream]

    def _valid(self) -> tuple[str, Maker]:
        sid = self._symbol()
        self.since_odd[sid] += 1

        def make(now: int) -> Frame:
            event = self._event(sid, now)
            self.plan.valid_ids[self._kind()].add(int(event[self._id_key()]))
            return json.dumps(event)

        return "valid", make

    def _rejected(self) -> tuple[str, Maker]:
        sid = self._symbol()
        price_field = {"trade": "p", "bookTicker": "b", "ticker": "c"}[self.stream]
        odd = self.since_odd[sid] >= SPACING  # a finite odd price enters the validator's windows
        options: list[Callable[[int], dict[str, Any]]] = [
            lambda now: {price_field: "1E+400"},  # beyond float range
        ]
        if self.stream == "bookTicker":  # (ccxt itself cannot parse NaN trades and tickers)
            options.append(lambda now: {"a": "NaN"})
        if self.stream != "bookTicker":  # book tops carry no exchange time
            options.append(lambda now: {"E": now + 3_600_000, "T": now + 3_600_000})
        if self.stream == "trade":
            options.append(lambda now: {"q": "-0.5"})
        if odd:  # enough history for the order and jump rules to apply
            if self.stream != "bookTicker":
                options.append(lambda now: {"E": now - 30_000, "T": now - 30_000})
            options += [lambda now: {price_field: str(BASE[sid] * 50)},
                        lambda now: {price_field: "-1.00"}, lambda now: {price_field: "0"}]
        choice = self.rng.randrange(len(options))
        if choice >= len(options) - 3 and odd:
            self.since_odd[sid] = 0
        else:
            self.since_odd[sid] += 1

        def make(now: int) -> Frame:
            event = self._event(sid, now, **options[choice](now))
            self.plan.rejected_ids.add(int(event[self._id_key()]))
            return json.dumps(event)

        return "rejected", make

    def _malformed(self) -> Maker:
        sid = self._symbol()
        money = {"trade": "p", "bookTicker": "a", "ticker": "c"}[self.stream]
        variants: list[Callable[[int], tuple[Frame, str | None]]] = [
            lambda now: (self._truncated(json.dumps(self._event(sid, now)), sid), sid),
            lambda now: (json.dumps(self._event(sid, now, **{money: 60.5})), sid),
            lambda now: (json.dumps(self._event(sid, now, s="XXXUSDT")), None),
            lambda now: (self.rng.choice(["", "x", "}{", "nul", "ERROR reset", "<html>bad</html>",
                                          "\x00\x01\x02", "NaN", "💥" * 20]), None),
            lambda now: (bytes(self.rng.getrandbits(8) for _ in range(30)) + b"\xff", None),
            lambda now: ("[" * 5000 + "]" * 4999, None),
            lambda now: (self.rng.choice(["[]", "[1, 2]"]), None),
            lambda now: ("{" + '"pad":"' + "x" * 200_000 + '"', None),
        ]
        if self.stream != "bookTicker":  # ccxt's own arithmetic raises on these
            variants.append(lambda now: (json.dumps(self._event(sid, now, **{money: "NaN"})),
                                         sid))
        if self.stream == "trade":
            variants += [
                lambda now: (json.dumps(self._event(sid, now, T=str(now))), sid),
                lambda now: (json.dumps({k: v for k, v in self._event(sid, now).items()
                                         if k != "T"}), sid),
            ]
        pick = variants[self.rng.randrange(len(variants))]

        def make(now: int) -> Frame:
            frame, symbol = pick(now)
            self.plan.malformed_symbols[symbol or ""] += 1
            return frame

        return make

    def _truncated(self, text: str, sid: str) -> str:
        """``text`` cut short, but after its complete ``"s"`` field (so the symbol is known)."""
        after_symbol = text.index(f'"{sid}"') + len(sid) + 2
        return text[: min(len(text) - 1, after_symbol + self.rng.randint(0, 30))]

    def _ignored(self) -> Maker:
        options = ['{"result":null,"id":987654}', '{"e":"somethingNew","E":1,"s":"BTCUSDT"}',
                   '{"stream":"x","data":{}}', '{"u":1,"s":"BTCUSDT"}', '[{"e": 5}]']
        text = self.rng.choice(options)
        return lambda now: text


def _tick(sid: str) -> Decimal:
    return Decimal(1).scaleb(BASE[sid].as_tuple().exponent)  # type: ignore[arg-type]


class FuzzServer:
    """Binance-like stream endpoint that answers SUBSCRIBE and then plays the fuzz plan."""

    def __init__(self, seed: int) -> None:
        self.plan = Plan()
        rng = random.Random(seed)
        self.streams = {name: FuzzStream(name, random.Random(rng.random()), self.plan)
                        for name in FRAMES}
        self.subscribed: dict[str, asyncio.Event] = {n: asyncio.Event() for n in FRAMES}
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            control = json.loads(msg.data)
            await ws.send_str(json.dumps({"result": None, "id": control.get("id")}))
            for name in control.get("params", []):
                stream = name.partition("@")[2]
                self.sockets[stream] = ws
                self.subscribed[stream].set()
        return ws

    async def play(self) -> None:
        await asyncio.gather(*(asyncio.wait_for(e.wait(), 20) for e in self.subscribed.values()))
        await asyncio.gather(*(self._play(name, count) for name, count in FRAMES.items()))

    async def _play(self, name: str, count: int) -> None:
        ws, stream = self.sockets[name], self.streams[name]
        for n in range(count):
            outcome, make = stream.next()
            frame = make(time.time_ns() // 1_000_000)
            self.plan.sent[outcome] += 1
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
            if n % 50 == 49:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture(scope="module")
def rest() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0) as sim:
        yield sim


def test_ten_thousand_fuzzed_frames(rest: SimExchangeServer, tmp_path: Path,
                                    redis_url: str) -> None:
    seed = 20240305

    async def main() -> tuple[FuzzServer, StreamService]:
        server = FuzzServer(seed)
        await server.start()
        cfg = StreamConfig(symbols=SYMBOLS, base_url=rest.base_url,
                           ws_url=f"ws://127.0.0.1:{server.port}/ws", data_dir=tmp_path / "data",
                           redis_url=redis_url, stall_timeout_s=None, candles=False)
        service = StreamService(cfg)
        await service.start()
        try:
            await server.play()
            expected = server.plan.sent["valid"] + server.plan.sent["rejected"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if service.stats.ticks >= expected and not len(service.queue) \
                        and not service.health()["in_flight"]:
                    break
                await asyncio.sleep(0.05)
            assert service.status == "running"
            assert all(not t.done() for t in service._feed_tasks)
        finally:
            await service.stop()
            await server.stop()
        return server, service

    server, service = asyncio.run(main())
    plan, health = server.plan, service.health()
    assert sum(plan.sent.values()) == 10_000
    assert plan.sent["valid"] > 5_000
    assert plan.sent["rejected"] > 1_000
    assert plan.sent["malformed"] > 2_000
    counts = {k: int(str(health[k])) for k in ("valid", "rejected", "malformed", "ticks",
                                               "shed", "quarantined")}
    assert counts["shed"] == 0
    assert counts["valid"] == plan.sent["valid"]
    assert counts["rejected"] == plan.sent["rejected"]
    assert counts["malformed"] == plan.sent["malformed"]
    assert counts["quarantined"] == plan.sent["rejected"] + plan.sent["malformed"]
    stored = _stored_ids(redis_url)
    for kind, ids in plan.valid_ids.items():
        assert stored[kind] == ids, kind  # every valid frame landed, nothing else did
    records = [r for s in SYMBOLS for r in QuarantineStore(tmp_path / "data").load(s, *_days())]
    rejected = [r for r in records if r.rules != ("malformed_row",)]
    assert {int(r.raw["event_id"]) for r in rejected} == plan.rejected_ids
    assert len(rejected) == plan.sent["rejected"]
    malformed = [r for r in records if r.rules == ("malformed_row",)]
    assert len(malformed) == plan.sent["malformed"] - plan.malformed_symbols[""]
    feeds = health["feeds"]
    assert isinstance(feeds, dict)
    assert len(feeds) == 3
    assert all(f["reconnects"] == 0 for f in feeds.values())


def _stored_ids(url: str) -> dict[str, set[int]]:
    client = redis.Redis.from_url(url)
    out: dict[str, set[int]] = {"trade": set(), "book": set(), "ticker": set()}
    try:
        for symbol in SYMBOLS:
            for kind in out:
                for _, fields in client.xrange(stream_key("binance", symbol, kind)):
                    tick = decode_tick(fields[b"t"])
                    assert tick.event_id is not None
                    out[kind].add(tick.event_id)
    finally:
        client.close()
    return out


def _days() -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(tz=UTC).date()
    return today - timedelta(days=1), today + timedelta(days=1)
