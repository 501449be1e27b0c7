"""One websocket client of the simulated exchange, the knobs of the streams and their counters.

A :class:`WsConnection` owns an outbound queue drained by its own writer task, so a slow
client never holds up the others: frames are queued in order (data, control replies and the
server's pings alike) and a client whose queue outgrows ``WsConfig.max_queue`` is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from helios_pipeline.domain.symbols import normalize_symbol, to_storage_id
from helios_pipeline.sim.ws.payloads import StreamName
from helios_pipeline.sim.ws.plan import MAX_TRADES_PER_SECOND


@dataclass(frozen=True)
class WsConfig:
    """Knobs of the simulated market streams.

    Attributes:
        trades_per_second: Trade rate of every symbol; None sends each symbol's own market
            trades (the fills behind its REST klines: 0.1 to 50 per second, about 1 for a
            typical pair and 35 for BTCUSDT). See ``plan`` for what each mode guarantees.
        symbol_trades_per_second: Per-symbol rates (``BTCUSDT`` or ``BTC/USDT``) that override
            ``trades_per_second``.
        ping_interval_s: The server pings each connection this often.
        pong_timeout_s: A connection that has not answered a ping for this long is dropped.
        max_lifetime_s: Connections are closed this long after they opened (Binance: 24 h).
        max_streams: Streams one connection may hold (Binance: 1024).
        max_incoming_per_s: Frames a client may send per second before it is disconnected
            (Binance: 5); None does not limit.
        max_queue: Frames queued for a client before it is dropped as too slow.
        kline_push_s: Period of ``@kline_*`` updates (Binance: 2 s).
        ticker_push_s: Period of ``@ticker``/``@miniTicker`` updates (Binance: 1 s).
        close_timeout_s: How long a closing handshake may take.
    """

    trades_per_second: float | None = None
    symbol_trades_per_second: Mapping[str, float] = field(default_factory=dict)
    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_lifetime_s: float = 24 * 3600.0
    max_streams: int = 1024
    max_incoming_per_s: int | None = None
    max_queue: int = 200_000
    kline_push_s: float = 2.0
    ticker_push_s: float = 1.0
    close_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        """Check the rates and normalise the per-symbol keys to exchange ids.

        Raises:
            ValueError: A rate is not positive or above ``MAX_TRADES_PER_SECOND``.
            SymbolError: A key of ``symbol_trades_per_second`` is not a symbol.
        """
        rates = [*self.symbol_trades_per_second.values()]
        if self.trades_per_second is not None:
            rates.append(self.trades_per_second)
        for rate in rates:
            if not 0 < rate <= MAX_TRADES_PER_SECOND:
                raise ValueError(f"trades_per_second={rate} must be above 0 and at most "
                                 f"{MAX_TRADES_PER_SECOND:g}.")
        by_id = {to_storage_id(normalize_symbol(k)): r
                 for k, r in self.symbol_trades_per_second.items()}
        object.__setattr__(self, "symbol_trades_per_second", by_id)

    def rate_for(self, symbol: str) -> float | None:
        """Trade rate of exchange id ``symbol`` (None: the market's own trades)."""
        return self.symbol_trades_per_second.get(symbol, self.trades_per_second)


@dataclass
class WsStats:
    """Counters of the websocket side (reset by ``POST /_sim/reset``)."""

    connections_total: int = 0
    connections_refused: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    frames_received: int = 0
    bad_frames: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)
    last_send_us: int = 0

    def reset(self) -> None:
        """Zero every counter."""
        fresh = WsStats()
        for name in vars(fresh):
            setattr(self, name, getattr(fresh, name))

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain JSON values."""
        return {
            "connections_total": self.connections_total,
            "connections_refused": self.connections_refused,
            "messages_sent": self.messages_sent,
            "messages_dropped": self.messages_dropped,
            "frames_received": self.frames_received,
            "bad_frames": self.bad_frames,
            "disconnects_forced": sum(self.disconnects.values()),
            "disconnects_by_reason": dict(self.disconnects),
            "last_send_us": self.last_send_us,
        }


class WsConnection:
    """A connected client: its streams, outbound queue, keep-alive and lifetime."""

    def __init__(self, ws: web.WebSocketResponse, conn_id: int, config: WsConfig,
                 stats: WsStats, *, combined: bool, micros: bool) -> None:
        """Wrap an open websocket (the writer starts with :meth:`start`)."""
        now = time.monotonic()
        self.ws = ws
        self.id = conn_id
        self.combined = combined
        self.micros = micros
        self.streams: dict[str, StreamName] = {}
        self.opened_s = now
        self.last_pong_s = now
        self.next_ping_s = now + config.ping_interval_s
        self.expires_s = now + config.max_lifetime_s
        self.closing = False
        self._config = config
        self._stats = stats
        self._queue: deque[str | tuple[WSMsgType, bytes]] = deque()
        self._wake = asyncio.Event()
        self._window = (0, 0)  # (second, frames received in it)
        self._writer_task: asyncio.Task[None] | None = None
        self.close_requested: asyncio.Future[tuple[int, str, str | None]] = (
            asyncio.get_running_loop().create_future())

    def start(self) -> None:
        """Start the writer task."""
        self._writer_task = asyncio.get_running_loop().create_task(self._writer())

    def enqueue(self, frame: str) -> bool:
        """Queue a text frame; False (and nothing queued) when the client is too far behind."""
        if self.closing or self.ws.closed:
            return True
        if len(self._queue) >= self._config.max_queue:
            return False
        self._queue.append(frame)
        self._wake.set()
        return True

    def ping(self) -> None:
        """Queue a ping frame (payload: the wall-clock time in ms)."""
        self._queue.append((WSMsgType.PING, str(time.time_ns() // 1_000_000).encode()))
        self._wake.set()

    def pong(self, payload: bytes) -> None:
        """Queue the answer to a client's ping."""
        self._queue.append((WSMsgType.PONG, payload))
        self._wake.set()

    def count_incoming(self) -> bool:
        """Count a received frame; False when the client went over ``max_incoming_per_s``."""
        limit = self._config.max_incoming_per_s
        second = int(time.monotonic())
        start, count = self._window
        self._window = (second, count + 1) if second == start else (second, 1)
        return limit is None or self._window[1] <= limit

    async def _writer(self) -> None:
        ws, stats = self.ws, self._stats
        try:
            while not ws.closed:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                frame = self._queue.popleft()
                if not isinstance(frame, str):
                    kind, payload = frame
                    await (ws.ping(payload) if kind == WSMsgType.PING else ws.pong(payload))
                    continue
                await ws.send_str(frame)
                stats.messages_sent += 1
                stats.last_send_us = time.time_ns() // 1000
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the handler notices and cleans up

    def close(self, code: int, message: str, reason: str, farewell: str | None = None) -> None:
        """Ask the connection's handler to close it, counting it as forced with ``reason``.

        Queued frames are dropped; ``farewell`` is sent just before the close frame.
        """
        if self.closing:
            return
        self.closing = True
        self._stats.disconnects[reason] += 1
        self._queue.clear()
        if not self.close_requested.done():
            self.close_requested.set_result((code, message, farewell))

    async def close_now(self) -> None:
        """The closing handshake asked for by :meth:`close` (run by the connection's handler).

        The handler must not be inside ``receive()``: aiohttp would then drop the TCP
        connection before the client has answered the close frame.
        """
        code, message, farewell = self.close_requested.result()
        self.stop()
        try:
            if farewell is not None:
                await self.ws.send_str(farewell)
            await self.ws.close(code=code, message=message.encode())
        except (ConnectionError, RuntimeError):
            pass

    def stop(self) -> None:
        """Stop writing (the socket is closing or gone)."""
        self.closing = True
        if self._writer_task is not None:
            self._writer_task.cancel()
