"""Binance market streams of the simulated exchange, on the same aiohttp app and port as REST.

Endpoints (``ws://127.0.0.1:PORT``):

* ``/ws`` and ``/ws/<anything>``: a raw connection (ccxt.pro connects to ``<ws url>/<n>``);
  ``/ws/<streamName>`` (several joined by ``/``) subscribes at once.
* ``/stream?streams=<s1>/<s2>``: a combined connection; events arrive wrapped as
  ``{"stream": "<streamName>", "data": <raw payload>}``.
* ``?timeUnit=MICROSECOND`` on either: every time field in microseconds, ``E`` included.

Live control frames (``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY``/``GET_PROPERTY combined``) and their error replies are in ``protocol``;
streams and payloads in ``payloads``; how the trades relate to REST klines in ``plan``.
The server pings every ``WsConfig.ping_interval_s`` (20 s), drops a client silent for
``pong_timeout_s`` (60 s) and closes every connection after ``max_lifetime_s`` (24 h).

**When was a tick sent?** ``E`` of every event (except ``@bookTicker``, which has none, as on
Binance) is the wall-clock time in ms at which the simulator handed it to the connection; with
``timeUnit=MICROSECOND`` it is the same instant in microseconds, so
``receive_time - E`` is the end-to-end latency. ``/_sim/stats`` reports ``ws.last_send_us``.

Faults (``ws_disconnect``, ``ws_stall``, ``ws_burst``, ``ws_malformed``, ``ws_refuse``) are
part of the exchange's fault spec; see ``faults``. Counters are under ``ws`` in
``/_sim/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from helios_pipeline.sim.ws.conn import WsConfig, WsConnection
from helios_pipeline.sim.ws.hub import MarketSource, WsHub

__all__ = ["WS_HUB_KEY", "MarketSource", "WsConfig", "WsHub", "add_ws_routes"]

WS_HUB_KEY = web.AppKey("ws_hub", WsHub)
_MAX_FRAME = 64 * 1024
_CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


def _initial_streams(request: web.Request) -> list[str]:
    """Stream names given in the URL: ``/ws/<a>/<b>`` or ``/stream?streams=<a>/<b>``."""
    if request.path.startswith("/stream"):
        raw = request.query.get("streams", "")
    else:
        raw = request.match_info.get("tail", "")
    return [name for name in raw.split("/") if "@" in name]


def _micros(request: web.Request) -> bool:
    unit = request.query.get("timeUnit", "MILLISECOND").upper()
    if unit not in ("MILLISECOND", "MICROSECOND"):
        raise web.HTTPBadRequest(text=f"Invalid timeUnit {unit!r}: MILLISECOND or MICROSECOND.")
    return unit == "MICROSECOND"


async def stream_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade to a websocket and serve the client's streams until it goes away."""
    hub = request.app[WS_HUB_KEY]
    ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=_MAX_FRAME,
                               timeout=hub.config.close_timeout_s)
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="Expected a websocket upgrade.")
    streams = hub.parse_streams(_initial_streams(request))
    if streams is None:
        return web.Response(status=400, text="Invalid request: invalid stream.")
    if len(streams) > hub.config.max_streams:
        return web.Response(status=400, text="Invalid request: too many streams.")
    micros = _micros(request)
    if hub.refusing():
        return web.Response(status=503, content_type="text/html",
                            text="<html><body><h1>503 Service Unavailable</h1></body></html>")
    await ws.prepare(request)
    conn = hub.connect(ws, combined=request.path.startswith("/stream"), micros=micros)
    try:
        hub.subscribe(conn, streams)
        await _serve(ws, conn, hub)
    finally:
        hub.disconnect(conn)
    return ws


async def _serve(ws: web.WebSocketResponse, conn: WsConnection, hub: WsHub) -> None:
    """Hand the client's frames to the hub until it leaves or the server closes the socket."""
    while True:
        receiving = asyncio.ensure_future(ws.receive())
        try:
            await asyncio.wait((receiving, conn.close_requested),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not receiving.done():  # leave receive() before closing (see close_now)
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiving
        if receiving.cancelled():
            await conn.close_now()
            return
        msg = receiving.result()
        if msg.type in _CLOSED:
            return
        hub.receive(conn, msg)


def add_ws_routes(app: web.Application, hub: WsHub) -> None:
    """Serve ``hub``'s streams on ``app`` (``/ws``, ``/ws/...``, ``/stream``)."""
    app[WS_HUB_KEY] = hub
    for path in ("/ws", "/ws/{tail:.*}", "/stream", "/stream/{tail:.*}"):
        app.router.add_get(path, stream_handler)

    async def close_streams(app: web.Application) -> None:
        await app[WS_HUB_KEY].shutdown()

    app.on_shutdown.append(close_streams)
