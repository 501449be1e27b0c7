"""The simulated Binance spot REST API as an aiohttp application (run it with ``server``).

:class:`SimExchange` holds the state (feed, listed symbols, weight budget, faults, stats);
:func:`build_app` wires the endpoints. Every ``/api/v3`` response carries
``X-MBX-USED-WEIGHT-1M``. Admin endpoints, outside the Binance surface and free of weight and
faults: ``POST /_sim/faults`` (body = spec, replaces the active one; empty clears),
``GET /_sim/faults``, ``GET /_sim/stats`` and ``POST /_sim/reset`` (clears stats and limits).
The market streams (``/ws``, ``/stream``) share the app; see ``ws``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web

from helios_pipeline.domain.symbols import normalize_symbol, to_storage_id
from helios_pipeline.sim.admin import VenueBookkeeping, add_admin_routes
from helios_pipeline.sim.binance import quotes
from helios_pipeline.sim.binance.archive import (
    ARCHIVE_PREFIX,
    ArchiveNotFoundError,
    BulkArchive,
    parse_name,
)
from helios_pipeline.sim.binance.limits import WeightLimiter, request_weight, wall_clock_ms
from helios_pipeline.sim.binance.params import (
    BinanceError,
    bad_request,
    limit_param,
    mandatory,
    optional_int,
    selection,
    symbol_param,
    utc_time_zone,
)
from helios_pipeline.sim.market.candles import INTERVAL_MS, CandlePatch
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.sources import ReplayMarket
from helios_pipeline.sim.market.universe import (
    DEFAULT_SYMBOLS,
    SymbolSpec,
    exchange_info_entry,
    symbol_spec,
)
from helios_pipeline.sim.wire import dumps
from helios_pipeline.sim.ws.routes import WsConfig, WsHub, add_ws_routes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_HOUR_MS = 3_600_000


class SimExchange(VenueBookkeeping):
    """State of one simulated exchange: market data, symbols, weight budget, faults, stats."""

    def __init__(self, *, data_dir: Path | str | None = None, faults: str = "",
                 weight_limit: int = 6000, symbols: Iterable[str] = (),
                 now_ms: Callable[[], int] | None = None,
                 wall_clock: Callable[[], int] = wall_clock_ms, ban_after: int = 3,
                 ws_config: WsConfig | None = None) -> None:
        """Create the exchange.

        Args:
            data_dir: Folder of Binance 1m kline files to replay (None: seeded market only).
            faults: Fault spec (see ``faults``).
            weight_limit: Request weight allowed per minute.
            symbols: Extra symbols to list (``BTC/USDT`` or ``BTCUSDT``).
            now_ms: Market clock: klines after it do not exist yet (default: wall clock).
            wall_clock: Clock of the weight windows and bans.
            ban_after: Requests tolerated after a 429 before the 418 ban.
            ws_config: Knobs of the market streams (trade rate, pings, limits).

        Raises:
            FaultSpecError: ``faults`` is not a valid spec.
            FileNotFoundError: ``data_dir`` is not a folder.
        """
        replay = ReplayMarket(data_dir) if data_dir is not None else None
        self.feed = MarketFeed(replay)
        names = [*DEFAULT_SYMBOLS, *sorted(replay.symbols if replay else ()),
                 *(to_storage_id(normalize_symbol(s)) for s in symbols)]
        self.symbols: dict[str, SymbolSpec] = {n: symbol_spec(n) for n in dict.fromkeys(names)}
        self.now_ms = now_ms or wall_clock_ms
        self.wall_clock = wall_clock
        super().__init__(faults)
        self.limiter = WeightLimiter(weight_limit, wall_clock, ban_after=ban_after)
        self.ws = WsHub(self, ws_config)
        self.archive = BulkArchive(self.feed, lambda: self.now_ms(), self.patch_lookup)

    def reset(self) -> None:
        """Clear request statistics, fired-fault counters and the weight budget."""
        super().reset()
        self.limiter.reset()
        self.ws.reset_stats()

    def stats(self) -> dict[str, Any]:
        """Request counts per path and status, faults fired, weight used, active spec."""
        return {**super().stats(), "weight_used_1m": self.limiter.used(),
                "weight_limit_1m": self.limiter.limit, "ws": self.ws.snapshot()}

    def patch_lookup(self) -> Callable[[str, int, int], tuple[CandlePatch, ...]]:
        """Data-fault lookup for one request; counts each kind once when it changes klines."""
        injector = self.faults
        seen: set[str] = set()

        def lookup(symbol: str, start_ms: int, end_ms: int) -> tuple[CandlePatch, ...]:
            found = injector.patches(symbol, start_ms, end_ms)
            for patch in found:
                if patch.kind not in seen:
                    seen.add(patch.kind)
                    injector.fired[patch.kind] += 1
            return found

        return lookup


SIM_KEY = web.AppKey("sim", SimExchange)


def json_response(payload: object, status: int = 200) -> web.Response:
    """A JSON response with Binance's content type."""
    return raw_json(dumps(payload), status)


def raw_json(body: bytes, status: int = 200) -> web.Response:
    """A response whose body is already encoded JSON."""
    return web.Response(body=body, status=status, content_type="application/json",
                        charset="UTF-8")


def _error(status: int, code: int, msg: str, retry_after: int | None = None) -> web.Response:
    response = json_response({"code": code, "msg": msg}, status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _too_much_weight(limit: int, retry_after: int) -> web.Response:
    return _error(429, -1003, f"Too much request weight used; current limit is {limit} request "
                              "weight per 1 MINUTE. Please use WebSocket Streams for live updates "
                              "to avoid polling the API.", retry_after)


def _banned(until_ms: int, retry_after: int) -> web.Response:
    return _error(418, -1003, f"Way too much request weight used; IP banned until {until_ms}. "
                              "Please use WebSocket Streams for live updates to avoid bans.",
                  retry_after)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def _fault_response(sim: SimExchange, kind: str, status: int, retry_after: int) -> web.Response:
    if kind == "http429":
        return _too_much_weight(sim.limiter.limit, retry_after)
    if kind == "ban":
        return _banned(sim.wall_clock() + retry_after * 1000, retry_after)
    if kind == "http5xx":
        phrase = _phrase(status)
        return web.Response(status=status, content_type="text/html",
                            text=f"<html><body><h1>{status} {phrase}</h1></body></html>")
    return web.Response(status=200, content_type="text/html",  # malformed
                        text="<html><head><title>Maintenance</title></head><body>The system is "
                             "under maintenance.</body></html>")


async def _serve(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    plan = sim.faults.plan(request.path)
    if plan.delay_s:
        await asyncio.sleep(plan.delay_s)
    fault = plan.response
    if fault is not None and fault.kind != "truncated":
        return _fault_response(sim, fault.kind, fault.status, fault.retry_after)
    try:
        response = await handler(request)
    except BinanceError as exc:
        return _error(exc.status, exc.code, exc.msg)
    except web.HTTPException as exc:
        return web.Response(status=exc.status, text=exc.text, content_type="text/plain")
    if fault is not None and isinstance(response, web.Response) and isinstance(response.body,
                                                                               bytes):
        body = response.body
        response = web.Response(body=body[: len(body) // 2], status=response.status,
                                content_type="application/json", charset="UTF-8")
    return response


@web.middleware
async def binance_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Weight budget, faults, Binance error bodies and the used-weight header."""
    sim = request.app[SIM_KEY]
    if not request.path.startswith("/api/"):
        try:
            admin = await handler(request)
        except web.HTTPException as exc:
            admin = web.Response(status=exc.status, text=exc.text, content_type="text/plain")
        admin.headers[WEIGHT_HEADER] = str(sim.limiter.used())
        return admin
    sim.requests[request.path] += 1
    verdict = sim.limiter.admit(request_weight(request.path, request.query))
    response: web.StreamResponse
    if verdict.status == 418:
        response = _banned(verdict.banned_until_ms, verdict.retry_after_s)
    elif verdict.status == 429:
        response = _too_much_weight(sim.limiter.limit, verdict.retry_after_s)
    else:
        response = await _serve(request, handler)
    response.headers[WEIGHT_HEADER] = str(verdict.used)
    sim.statuses[response.status] += 1
    return response


def _sim(request: web.Request) -> SimExchange:
    return request.app[SIM_KEY]


async def ping(request: web.Request) -> web.Response:
    """``GET /api/v3/ping``."""
    return json_response({})


async def server_time(request: web.Request) -> web.Response:
    """``GET /api/v3/time``."""
    return json_response({"serverTime": _sim(request).now_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    """``GET /api/v3/exchangeInfo`` (``symbol`` | ``symbols`` | all; ``symbolStatus``)."""
    sim = _sim(request)
    names, _ = selection(request.query, sim.symbols)
    status = request.query.get("symbolStatus")
    if status is not None and status not in ("TRADING", "HALT", "BREAK"):
        raise bad_request(-1122, "Invalid symbolStatus.")
    entries = [exchange_info_entry(sim.symbols[n]) for n in names] if status in (
        None, "TRADING") else []
    return json_response({
        "timezone": "UTC",
        "serverTime": sim.now_ms(),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": sim.limiter.limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": entries,
    })


async def klines(request: web.Request) -> web.Response:
    """``GET /api/v3/klines``: open time in ``[startTime, endTime]``, ascending, ``limit``."""
    sim, q = _sim(request), request.query
    symbol = symbol_param(q, sim.symbols)
    interval = mandatory(q, "interval")
    if interval not in INTERVAL_MS:
        raise bad_request(-1120, "Invalid interval.")
    start, end = optional_int(q, "startTime"), optional_int(q, "endTime")
    limit = limit_param(q, 500, 1000)
    utc_time_zone(q)
    if start is not None and end is not None and start > end:
        raise bad_request(-1023, "Start time is greater than end time.")
    rows = sim.feed.klines(symbol, INTERVAL_MS[interval], start_ms=start, end_ms=end,
                           limit=limit, now_ms=sim.now_ms(), patches=sim.patch_lookup())
    return raw_json(b"[" + b",".join(rows) + b"]")


async def agg_trades(request: web.Request) -> web.Response:
    """``GET /api/v3/aggTrades`` (``fromId`` | ``startTime``/``endTime`` | latest)."""
    sim, q = _sim(request), request.query
    symbol = symbol_param(q, sim.symbols)
    from_id = optional_int(q, "fromId")
    start, end = optional_int(q, "startTime"), optional_int(q, "endTime")
    limit = limit_param(q, 500, 1000)
    if from_id is not None and (start is not None or end is not None):
        raise bad_request(-1128, "Combination of optional parameters invalid.")
    if start is not None and end is not None:
        if start > end:
            raise bad_request(-1023, "Start time is greater than end time.")
        if end - start > _HOUR_MS:
            raise bad_request(-1127, "More than 1 hours between startTime and endTime.")
    trades = sim.feed.agg_trades(symbol, start_ms=start, end_ms=end, from_id=from_id,
                                 limit=limit, now_ms=sim.now_ms())
    return json_response(trades)


async def recent_trades(request: web.Request) -> web.Response:
    """``GET /api/v3/trades``: the latest fills."""
    sim, q = _sim(request), request.query
    symbol = symbol_param(q, sim.symbols)
    limit = limit_param(q, 500, 1000)
    return json_response(sim.feed.recent_trades(symbol, limit, sim.now_ms()))


async def depth(request: web.Request) -> web.Response:
    """``GET /api/v3/depth``: a synthetic book around the last trade."""
    sim, q = _sim(request), request.query
    symbol = symbol_param(q, sim.symbols)
    limit = limit_param(q, 100, 5000)
    return json_response(quotes.depth_json(sim.feed, symbol, sim.now_ms(), limit))


def _ticker_endpoint(build: Callable[[MarketFeed, str, int], dict[str, Any]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        sim = _sim(request)
        names, single = selection(request.query, sim.symbols)
        now = sim.now_ms()
        entries = [build(sim.feed, name, now) for name in names]
        return json_response(entries[0] if single else entries)

    return handler


_MINI_FIELDS = ("symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume",
                "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count")


async def ticker_24hr(request: web.Request) -> web.StreamResponse:
    """``GET /api/v3/ticker/24hr`` (``type`` FULL or MINI)."""
    kind = request.query.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        raise bad_request(-1139, "Invalid ticker type.")

    def build(feed: MarketFeed, symbol: str, now: int) -> dict[str, Any]:
        full = quotes.ticker_24hr_json(feed, symbol, now)
        return full if kind == "FULL" else {k: full[k] for k in _MINI_FIELDS}

    return await _ticker_endpoint(build)(request)


def _not_found(name: str) -> web.Response:
    return web.Response(status=404, content_type="application/xml",
                        text=f"<Error><Code>NoSuchKey</Code><Key>{name}</Key></Error>")


async def archive_file(request: web.Request) -> web.Response:
    """``GET /data/spot/{monthly|daily}/klines/{SYMBOL}/1m/{name}`` (``.zip`` or ``.CHECKSUM``).

    Free of weight (another host on the real exchange); request faults apply to ``.zip`` files.
    """
    sim, info = _sim(request), request.match_info
    name = info["name"]
    sim.requests[request.path] += 1
    checksum = name.endswith(".CHECKSUM")
    try:
        period = parse_name(name.removesuffix(".CHECKSUM"), info["period"] == "monthly")
        if period.symbol != info["symbol"] or period.symbol not in sim.symbols:
            raise ArchiveNotFoundError(name)
        if checksum:
            return web.Response(body=sim.archive.checksum(period), content_type="text/plain")
        plan = sim.faults.plan(request.path)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        fault = plan.response
        kind = fault.kind if fault is not None else None
        if fault is not None and not fault.kind.startswith("archive_") and kind != "truncated":
            return _fault_response(sim, fault.kind, fault.status, fault.retry_after)
        body = sim.archive.file(period, kind if kind != "truncated" else None)
    except ArchiveNotFoundError:
        return _not_found(name)
    if kind == "truncated":
        body = body[: len(body) // 2]
    return web.Response(body=body, content_type="application/zip")


def build_app(sim: SimExchange) -> web.Application:
    """The aiohttp application serving ``sim``."""
    app = web.Application(middlewares=[binance_middleware])
    app[SIM_KEY] = sim
    api = "/api/v3"
    app.router.add_get(f"{api}/ping", ping)
    app.router.add_get(f"{api}/time", server_time)
    app.router.add_get(f"{api}/exchangeInfo", exchange_info)
    app.router.add_get(f"{api}/klines", klines)
    app.router.add_get(f"{api}/aggTrades", agg_trades)
    app.router.add_get(f"{api}/trades", recent_trades)
    app.router.add_get(f"{api}/depth", depth)
    app.router.add_get(f"{api}/ticker/24hr", ticker_24hr)
    app.router.add_get(f"{api}/ticker/bookTicker", _ticker_endpoint(quotes.book_ticker_json))
    app.router.add_get(f"{api}/ticker/price", _ticker_endpoint(quotes.price_ticker_json))
    app.router.add_get(ARCHIVE_PREFIX + "/{period:monthly|daily}/klines/{symbol}/1m/{name}",
                       archive_file)
    add_admin_routes(app, _sim)
    add_ws_routes(app, sim.ws)
    return app
