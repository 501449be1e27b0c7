"""The websocket side of one simulated exchange: connections, subscriptions, fan-out, faults.

:class:`WsHub` keeps the open connections and who subscribed to what, runs one
``ws_driver.SymbolDriver`` per symbol with subscribers, encodes each event once per flavour
(raw or combined, milliseconds or microseconds) and queues it on every subscriber. A
housekeeping task pings connections, drops the ones that stopped answering or outlived
``max_lifetime_s`` and applies the websocket faults of the exchange's active spec.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from itertools import count
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from helios_pipeline.sim.faults import FaultInjector
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.wire import dumps
from helios_pipeline.sim.ws.conn import WsConfig, WsConnection, WsStats
from helios_pipeline.sim.ws.driver import Subscribers, SymbolDriver
from helios_pipeline.sim.ws.faults import WsFaultState
from helios_pipeline.sim.ws.payloads import Event, StreamName, in_micros, parse_stream
from helios_pipeline.sim.ws.protocol import (
    ControlError,
    parse_control,
    property_params,
    result,
    stream_params,
)

_HOUSEKEEPING_S = 0.05


class MarketSource(Protocol):
    """What the hub reads from the exchange (``api.SimExchange`` is one)."""

    @property
    def feed(self) -> MarketFeed:
        """The REST market model."""

    @property
    def symbols(self) -> Mapping[str, object]:
        """Listed exchange ids."""

    @property
    def now_ms(self) -> Callable[[], int]:
        """The market clock."""

    @property
    def faults(self) -> FaultInjector:
        """The active fault spec with its runtime state."""


class WsHub:
    """Connections, subscriptions and symbol drivers of one simulated exchange."""

    def __init__(self, source: MarketSource, config: WsConfig | None = None) -> None:
        """Serve ``source``'s market with ``config`` (defaults: Binance's limits)."""
        self.source = source
        self.feed = source.feed
        self.config = config or WsConfig()
        self.stats = WsStats()
        self.connections: dict[int, WsConnection] = {}
        self._streams: dict[str, Subscribers] = {}
        self._drivers: dict[str, SymbolDriver] = {}
        self._ids = count(1)
        self._faults = WsFaultState((), 0.0, source.faults.fired)
        self._injector: FaultInjector | None = None
        self._housekeeper: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------------------- driver API

    def market_ms(self) -> int:
        """The market clock (the exchange's ``now_ms``)."""
        return self.source.now_ms()

    def streams_of(self, symbol: str) -> Subscribers:
        """Stream name -> (parsed name, subscribers) of ``symbol`` (empty when none)."""
        return self._streams.get(symbol, {})

    def publish(self, stream: str, subscribers: set[WsConnection], event: Event,
                now_ns: int) -> None:
        """Queue ``event`` of ``stream`` on each subscriber in its flavour (see module doc)."""
        if not subscribers:
            return
        faults = self.faults()
        if faults.stalled(time.monotonic()):
            self.stats.messages_dropped += len(subscribers)
            return
        frames: dict[tuple[bool, bool], str] = {}
        for conn in list(subscribers):
            flavour = (conn.micros, conn.combined)
            frame = frames.get(flavour)
            if frame is None:
                frame = frames[flavour] = self._encode(stream, event, flavour, now_ns)
            if faults.active:
                frame = faults.malform(frame) or frame
            if not conn.enqueue(frame):
                conn.close(1008, "Client too slow", "slow_consumer")

    @staticmethod
    def _encode(stream: str, event: Event, flavour: tuple[bool, bool], now_ns: int) -> str:
        micros, combined = flavour
        raw = dumps(in_micros(event, now_ns // 1000) if micros else event).decode()
        return f'{{"stream":"{stream}","data":{raw}}}' if combined else raw

    def burst_sent(self, symbol: str, count: int) -> None:
        """Count a ``ws_burst`` that went out."""
        self.source.faults.fired["ws_burst"] += 1

    # ----------------------------------------------------------------------------- faults

    def faults(self) -> WsFaultState:
        """Runtime state of the websocket faults of the exchange's active spec."""
        injector = self.source.faults
        if injector is not self._injector:
            self._injector = injector
            self._faults = WsFaultState(injector.spec.ws_faults, injector.started_s,
                                        injector.fired)
        return self._faults

    def refusing(self) -> bool:
        """Whether a new connection must be refused now (``ws_refuse``); counts it if so."""
        if self.faults().refusing(time.monotonic()):
            self.stats.connections_refused += 1
            return True
        return False

    def _apply_faults(self, now_s: float) -> None:
        faults = self.faults()
        if not faults.active:
            return
        faults.stalled(now_s)  # counts a stall as soon as it starts
        for index, limit, code in faults.due_disconnects(now_s):
            victims = [c for c in self.connections.values() if not c.closing][:limit]
            for conn in victims:
                conn.close(code, "Simulated disconnect", "fault")
            faults.closed(index, len(victims))
        for burst in faults.due_bursts(now_s):
            for symbol, driver in self._drivers.items():
                if burst.symbol in (None, symbol):
                    driver.hold = burst.ticks

    # ----------------------------------------------------------------------------- connections

    def connect(self, ws: web.WebSocketResponse, *, combined: bool,
                micros: bool) -> WsConnection:
        """Register an open websocket and start its writer."""
        conn = WsConnection(ws, next(self._ids), self.config, self.stats, combined=combined,
                            micros=micros)
        self.connections[conn.id] = conn
        self.stats.connections_total += 1
        conn.start()
        self._ensure_housekeeper()
        return conn

    def disconnect(self, conn: WsConnection) -> None:
        """Forget a connection whose socket is closed."""
        self.unsubscribe(conn, list(conn.streams.values()))
        self.connections.pop(conn.id, None)
        conn.stop()

    def parse_streams(self, names: list[str]) -> list[StreamName] | None:
        """Parsed stream names, or None when one is not a stream of a listed symbol."""
        parsed = [parse_stream(name, self.source.symbols) for name in names]
        return None if any(p is None for p in parsed) else [p for p in parsed if p]

    def subscribe(self, conn: WsConnection, streams: list[StreamName]) -> None:
        """Add ``streams`` to ``conn`` and start the drivers they need.

        Raises:
            ControlError: The connection would hold more than ``max_streams`` streams.
        """
        if len(conn.streams.keys() | {s.name for s in streams}) > self.config.max_streams:
            raise ControlError(2, "Invalid request: too many streams")
        for sn in streams:
            conn.streams[sn.name] = sn
            by_name = self._streams.setdefault(sn.symbol, {})
            by_name.setdefault(sn.name, (sn, set()))[1].add(conn)
            driver = self._drivers.get(sn.symbol)
            if driver is None or driver.task is None or driver.task.done():
                driver = self._drivers[sn.symbol] = SymbolDriver(self, sn.symbol)
                driver.start()

    def unsubscribe(self, conn: WsConnection, streams: list[StreamName]) -> None:
        """Remove ``streams`` from ``conn`` (drivers stop once their symbol has no streams)."""
        for sn in streams:
            conn.streams.pop(sn.name, None)
            by_name = self._streams.get(sn.symbol, {})
            entry = by_name.get(sn.name)
            if entry is not None:
                entry[1].discard(conn)
                if not entry[1]:
                    del by_name[sn.name]
            if not by_name:
                self._streams.pop(sn.symbol, None)

    # ----------------------------------------------------------------------------- frames in

    def receive(self, conn: WsConnection, msg: Any) -> None:
        """Handle one frame from the client: control requests, pings and pongs."""
        self.stats.frames_received += 1
        if not conn.count_incoming():
            conn.close(1008, "Too many requests", "rate_limit")
            return
        if msg.type == WSMsgType.PONG:
            conn.last_pong_s = time.monotonic()
        elif msg.type == WSMsgType.PING:
            conn.pong(msg.data)
        elif msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            try:
                reply = self._control(conn, msg.data)
            except ControlError as exc:
                self.stats.bad_frames += 1
                reply = exc.reply()
            conn.enqueue(dumps(reply).decode())

    def _control(self, conn: WsConnection, text: str | bytes) -> dict[str, Any]:
        control = parse_control(text)
        rid = control.request_id
        if control.method == "LIST_SUBSCRIPTIONS":
            return result(list(conn.streams), rid)
        if control.method in ("SET_PROPERTY", "GET_PROPERTY"):
            setting = control.method == "SET_PROPERTY"
            _, value = property_params(control, setting)
            if not setting:
                return result(conn.combined, rid)
            conn.combined = value
            return result(None, rid)
        parsed = self.parse_streams(stream_params(control))
        if parsed is None:
            raise ControlError(2, "Invalid request: invalid stream", rid)
        if control.method == "SUBSCRIBE":
            try:
                self.subscribe(conn, parsed)
            except ControlError as exc:
                raise ControlError(exc.code, exc.msg, rid) from None
        else:
            self.unsubscribe(conn, parsed)
        return result(None, rid)

    # ----------------------------------------------------------------------------- upkeep

    def _ensure_housekeeper(self) -> None:
        if self._housekeeper is None or self._housekeeper.done():
            self._housekeeper = asyncio.get_running_loop().create_task(self._housekeeping())

    async def _housekeeping(self) -> None:
        while True:
            now = time.monotonic()
            self._apply_faults(now)
            for conn in list(self.connections.values()):
                self._keep_alive(conn, now)
            await asyncio.sleep(_HOUSEKEEPING_S)

    def _keep_alive(self, conn: WsConnection, now: float) -> None:
        if conn.closing:
            return
        if now >= conn.expires_s:
            conn.close(1000, "Connection lifetime limit reached", "lifetime")
        elif now - conn.last_pong_s > self.config.pong_timeout_s:
            conn.close(1008, "Pong timeout", "pong_timeout")
        elif now >= conn.next_ping_s:
            conn.next_ping_s = now + self.config.ping_interval_s
            conn.ping()

    def snapshot(self) -> dict[str, Any]:
        """Counters plus open connections, subscriptions and running symbol drivers."""
        return {
            **self.stats.snapshot(),
            "connections": len(self.connections),
            "subscriptions": sum(len(c.streams) for c in self.connections.values()),
            "symbols_streaming": len(self._streams),
            "trades_per_second": self.config.trades_per_second,
        }

    def reset_stats(self) -> None:
        """Zero the counters (open connections and subscriptions stay)."""
        self.stats.reset()

    async def shutdown(self) -> None:
        """Tell every client the server is going away, close the sockets, stop the tasks."""
        now_ms = time.time_ns() // 1_000_000
        farewell = dumps({"e": "serverShutdown", "E": now_ms}).decode()
        for conn in list(self.connections.values()):
            conn.close(1001, "Server shutdown", "shutdown", farewell)
        if self.connections:
            await asyncio.sleep(0.05)  # let the farewells and close frames go out
        tasks = [d.task for d in self._drivers.values() if d.task is not None]
        if self._housekeeper is not None:
            tasks.append(self._housekeeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self.connections.values()):
            conn.stop()
