"""The simulated OKX spot exchange: OKX v5 public REST as an aiohttp application.

It serves what ``ccxt.okx`` calls for spot market data: ``/api/v5/public/instruments``,
``/api/v5/public/time``, ``/api/v5/market/candles`` (the latest 1440 bars, ``limit`` up to 300)
and ``/api/v5/market/history-candles`` (all history, ``limit`` up to 100), ``ticker``,
``tickers``, ``trades`` and ``books``. Candle rows are newest first; ``after`` returns bars
older than a timestamp and ``before`` bars newer than one, both exclusive, and the newest bars
of that window come first (so ``before`` alone gives the latest bars, as on OKX). Answers use
OKX's envelope ``{"code": "0", "msg": "", "data": [...]}``; see ``okx.params`` for errors and
rate limits (HTTP 429, code ``50011``).

Prices come from the same simulated market as the Binance simulator (see ``okx.venue``). The
fault spec is the Binance simulator's (``faults``), with the same admin endpoints
(``/_sim/faults``, ``/_sim/stats``, ``/_sim/reset``); ``http429`` answers OKX's ``50011`` with a
``Retry-After`` header, and the ``divergence`` data fault (prices times a factor in a window,
candles and live quotes alike) is what tests the cross-exchange checks, batch and live. Data
faults count once per request whose candles they touch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from helios_pipeline.domain.symbols import SymbolError, normalize_symbol, to_storage_id
from helios_pipeline.sim.admin import VenueBookkeeping, add_admin_routes
from helios_pipeline.sim.binance.limits import wall_clock_ms
from helios_pipeline.sim.market.candles import CandlePatch, KlineBlock
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.sources import ReplayMarket
from helios_pipeline.sim.market.universe import DEFAULT_SYMBOLS
from helios_pipeline.sim.okx import quotes as okx_quotes
from helios_pipeline.sim.okx.params import (
    OkxError,
    RequestRateLimiter,
    inst_type,
    limit_param,
    optional_ms,
    parameter_error,
    required,
    too_many_requests,
    unknown_instrument,
)
from helios_pipeline.sim.okx.venue import (
    BARS,
    OkxInstrument,
    OkxVenue,
    bar_open,
    candle_rows,
    okx_instrument,
    okx_number,
    symbol_of_inst_id,
)
from helios_pipeline.sim.wire import dumps, stable_seed, unit_interval

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LIVE_CANDLES = 1440
"""``/market/candles`` serves only the latest 1440 bars of each size."""
CANDLE_LIMITS = {"candles": 300, "history-candles": 100}
"""Largest ``limit`` per candle endpoint (larger values are capped)."""
_LIST_START_MS = 1_546_300_800_000  # 2019-01-01: listing times are spread over two years


class OkxSimExchange(VenueBookkeeping):
    """State of one simulated OKX exchange: venue, instruments, rate limits, faults, stats."""

    def __init__(self, *, data_dir: Path | str | None = None, faults: str = "",
                 symbols: Iterable[str] = (), now_ms: Callable[[], int] | None = None,
                 wall_clock: Callable[[], int] = wall_clock_ms,
                 rate_limits: bool = True) -> None:
        """Create the exchange.

        Args:
            data_dir: Folder of Binance 1m kline files to replay (None: seeded market only).
            faults: Fault spec (see ``faults``).
            symbols: Extra symbols to list (``BTC/USDT`` or ``BTCUSDT``).
            now_ms: Market clock: candles after it do not exist yet (default: wall clock).
            wall_clock: Clock of the rate-limit windows.
            rate_limits: Enforce OKX's per-endpoint request limits.

        Raises:
            FaultSpecError: ``faults`` is not a valid spec.
            FileNotFoundError: ``data_dir`` is not a folder.
        """
        replay = ReplayMarket(data_dir) if data_dir is not None else None
        self.venue = OkxVenue(MarketFeed(replay))
        names = [*DEFAULT_SYMBOLS, *sorted(replay.symbols if replay else ()),
                 *(to_storage_id(normalize_symbol(s)) for s in symbols)]
        listed = (okx_instrument(name) for name in dict.fromkeys(names))
        self.instruments: dict[str, OkxInstrument] = {i.inst_id: i for i in listed}
        self.now_ms = now_ms or wall_clock_ms
        super().__init__(faults)
        self.limiter = RequestRateLimiter(wall_clock, enabled=rate_limits)

    def reset(self) -> None:
        """Clear request statistics, fired-fault counters and the rate-limit windows."""
        super().reset()
        self.limiter.reset()

    def stats(self) -> dict[str, Any]:
        """Request counts per path and status, faults fired, rate-limited requests, spec."""
        return {**super().stats(), "rate_limited": self.limiter.rejected}

    def patches(self, symbol: str, start_ms: int, end_ms: int) -> tuple[CandlePatch, ...]:
        """Data faults of ``symbol`` touching 1m candles that open in ``[start_ms, end_ms)``."""
        return self.faults.patches(symbol, start_ms, end_ms)

    def count_served(self, symbol: str, bars: KlineBlock, interval_ms: int) -> None:
        """Count each data-fault kind once when it touches the bars a request answers with."""
        if len(bars):
            start, end = int(bars.open_ms[0]), int(bars.open_ms[-1]) + interval_ms
            for kind in sorted({p.kind for p in self.patches(symbol, start, end)}):
                self.faults.fired[kind] += 1

    def instrument(self, inst_id: str) -> OkxInstrument:
        """The listed instrument ``inst_id`` (``51001`` when there is none)."""
        found = self.instruments.get(inst_id)
        if found is None:
            raise unknown_instrument()
        return found


OKX_KEY = web.AppKey("okx_sim", OkxSimExchange)


def _sim(request: web.Request) -> OkxSimExchange:
    return request.app[OKX_KEY]


def okx_json(data: object, status: int = 200) -> web.Response:
    """A JSON response with the body encoded as given."""
    return web.Response(body=dumps(data), status=status, content_type="application/json",
                        charset="UTF-8")


def ok(data: list[Any]) -> web.Response:
    """OKX's success envelope around ``data``."""
    return okx_json({"code": "0", "msg": "", "data": data})


def error_response(error: OkxError, retry_after: int | None = None) -> web.Response:
    """OKX's error envelope with the error's HTTP status."""
    response = okx_json({"code": error.code, "msg": error.msg, "data": []}, error.status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _fault_response(kind: str, status: int, retry_after: int) -> web.Response:
    if kind == "http429":
        return error_response(too_many_requests(), retry_after)
    if kind == "ban":  # not an OKX status: kept so a spec means the same on both venues
        return error_response(OkxError(418, "50011", "Too Many Requests; this IP is blocked "
                                                     f"for {retry_after} s."), retry_after)
    if kind == "http5xx":
        return web.Response(status=status, content_type="text/html",
                            text=f"<html><body><h1>{status} Server Error</h1></body></html>")
    return web.Response(status=200, content_type="text/html",  # malformed
                        text="<html><head><title>Maintenance</title></head><body>OKX is under "
                             "maintenance.</body></html>")


async def _serve(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim = _sim(request)
    plan = sim.faults.plan(request.path)
    if plan.delay_s:
        await asyncio.sleep(plan.delay_s)
    fault = plan.response
    if fault is not None and fault.kind != "truncated":
        return _fault_response(fault.kind, fault.status, fault.retry_after)
    try:
        response = await handler(request)
    except OkxError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        return web.Response(status=exc.status, text=exc.text, content_type="text/plain")
    if fault is not None and isinstance(response, web.Response) and isinstance(response.body,
                                                                               bytes):
        body = response.body
        response = web.Response(body=body[: len(body) // 2], status=response.status,
                                content_type="application/json", charset="UTF-8")
    return response


@web.middleware
async def okx_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rate limits, faults, OKX error bodies and statistics."""
    sim = _sim(request)
    if not request.path.startswith("/api/"):
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=exc.text, content_type="text/plain")
    sim.requests[request.path] += 1
    if sim.limiter.admit(request.path):
        response = await _serve(request, handler)
    else:
        response = error_response(too_many_requests())
    sim.statuses[response.status] += 1
    return response


def _inst(request: web.Request) -> OkxInstrument:
    """The instrument named by the required ``instId``."""
    inst_id = required(request.query, "instId")
    try:
        symbol_of_inst_id(inst_id)
    except SymbolError:
        raise unknown_instrument() from None
    return _sim(request).instrument(inst_id)


def instrument_json(inst: OkxInstrument) -> dict[str, Any]:
    """One ``/api/v5/public/instruments`` entry of a spot instrument, fields as OKX sends."""
    margin = inst.quote in ("USDT", "USDC")
    listed = _LIST_START_MS + int(unit_interval("okx-list", inst.symbol) * 730) * 86_400_000
    return {
        "alias": "", "auctionEndTime": "", "baseCcy": inst.base, "category": "1",
        "contTdSwTime": "", "ctMult": "", "ctType": "", "ctVal": "", "ctValCcy": "",
        "expTime": "", "futureSettlement": False, "instFamily": "", "instId": inst.inst_id,
        "instIdCode": stable_seed("okx-code", inst.symbol) % 10_000_000,
        "instType": "SPOT", "lever": "10" if margin else "", "listTime": str(listed),
        "lotSz": okx_number(inst.lot_units), "maxIcebergSz": "9999999999.0000000000000000",
        "maxLmtAmt": "20000000", "maxLmtSz": "9999999999", "maxMktAmt": "1000000",
        "maxMktSz": "1000000", "maxStopSz": "1000000",
        "maxTriggerSz": "9999999999.0000000000000000", "maxTwapSz": "9999999999.0000000000000000",
        "minSz": okx_number(inst.min_units), "optType": "", "openType": "",
        "quoteCcy": inst.quote, "ruleType": "normal", "settleCcy": "", "state": "live",
        "stk": "", "tickSz": okx_number(inst.tick_units), "tradeQuoteCcyList": [inst.quote],
        "uly": "",
    }


async def server_time(request: web.Request) -> web.Response:
    """``GET /api/v5/public/time``."""
    return ok([{"ts": str(_sim(request).now_ms())}])


async def instruments(request: web.Request) -> web.Response:
    """``GET /api/v5/public/instruments`` (``instType`` required; only SPOT is listed)."""
    sim, q = _sim(request), request.query
    if inst_type(q) != "SPOT":
        return ok([])
    if q.get("instId"):
        return ok([instrument_json(_inst(request))])
    return ok([instrument_json(i) for i in sim.instruments.values()])


async def ticker(request: web.Request) -> web.Response:
    """``GET /api/v5/market/ticker``."""
    sim = _sim(request)
    inst = _inst(request)
    return ok([okx_quotes.ticker_json(sim.venue, inst, sim.now_ms(), sim.patches)])


async def tickers(request: web.Request) -> web.Response:
    """``GET /api/v5/market/tickers`` (``instType`` required; only SPOT has entries)."""
    sim = _sim(request)
    if inst_type(request.query) != "SPOT":
        return ok([])
    now = sim.now_ms()
    return ok([okx_quotes.ticker_json(sim.venue, i, now, sim.patches)
               for i in sim.instruments.values()])


async def books(request: web.Request) -> web.Response:
    """``GET /api/v5/market/books`` (``sz`` levels per side, 1 by default, at most 400)."""
    sim, q = _sim(request), request.query
    inst = _inst(request)
    raw = q.get("sz", "")
    if raw and (not raw.isdigit() or int(raw) < 1):
        raise parameter_error("sz")
    depth = min(int(raw), 400) if raw else 1
    return ok([okx_quotes.book_json(sim.venue, inst, sim.now_ms(), depth, sim.patches)])


async def trades(request: web.Request) -> web.Response:
    """``GET /api/v5/market/trades``: the latest trades, newest first (``limit`` <= 500)."""
    sim = _sim(request)
    inst = _inst(request)
    limit = limit_param(request.query, 100, 500)
    return ok(okx_quotes.trades_json(sim.venue, inst, sim.now_ms(), limit, sim.patches))


def _candles(endpoint: str) -> Handler:
    """``GET /api/v5/market/candles`` or ``history-candles``: newest first, ``after``/``before``."""
    live = endpoint == "candles"

    async def handler(request: web.Request) -> web.StreamResponse:
        sim, q = _sim(request), request.query
        inst = _inst(request)
        bar = q.get("bar") or "1m"
        if bar not in BARS:
            raise parameter_error("bar")
        after, before = optional_ms(q, "after"), optional_ms(q, "before")
        limit = limit_param(q, 100, CANDLE_LIMITS[endpoint])
        now = sim.now_ms()
        interval = BARS[bar][0]
        if live:  # only the latest 1440 bars
            oldest = bar_open(now, bar) - LIVE_CANDLES * interval
            before = oldest if before is None else max(before, oldest)
        bars = sim.venue.window(inst, bar, after=after, before=before, limit=limit, now_ms=now,
                                patches=sim.patches)
        sim.count_served(inst.symbol, bars, interval)
        return ok(candle_rows(bars, interval, now))

    return handler


def build_okx_app(sim: OkxSimExchange) -> web.Application:
    """The aiohttp application serving ``sim`` (ccxt's ``urls['api']['rest']`` = its origin)."""
    app = web.Application(middlewares=[okx_middleware])
    app[OKX_KEY] = sim
    api = "/api/v5"
    app.router.add_get(f"{api}/public/time", server_time)
    app.router.add_get(f"{api}/public/instruments", instruments)
    app.router.add_get(f"{api}/market/ticker", ticker)
    app.router.add_get(f"{api}/market/tickers", tickers)
    app.router.add_get(f"{api}/market/books", books)
    app.router.add_get(f"{api}/market/trades", trades)
    app.router.add_get(f"{api}/market/candles", _candles("candles"))
    app.router.add_get(f"{api}/market/history-candles", _candles("history-candles"))
    add_admin_routes(app, _sim)
    return app
