"""The read API's HTTP service: Starlette routes over :class:`MarketDataQuery`.

Every data route passes the same :class:`~helios_pipeline.api.gate.Gate` (token 401, rate 429,
kind and symbol 403, bad arguments 400, the query's deadline 504) and then the tiers of its
answer are checked against the token's (403).
:class:`~helios_pipeline.api.middleware.AccessMiddleware` refuses oversized requests (413) and
records every request.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helios_pipeline.api.access import AccessRecorder
from helios_pipeline.api.errors import ApiError
from helios_pipeline.api.gate import ApiConfig, Gate, IndicatorProvider
from helios_pipeline.api.middleware import AccessMiddleware
from helios_pipeline.api.openapi import openapi_document
from helios_pipeline.api.tokens import Token, TokenStore
from helios_pipeline.api.views import candles_json, decimal_text, json_value, quality_json
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.quality.daily import Venue, summarize_day
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.storage.paths import quality_report_path

__all__ = ["ROUTES", "ApiConfig", "create_app"]

# ``current`` (the hourly flush of live minutes) is the hot tier's data, kept on disk.
_TIER_SCOPE = {"hot": "hot", "current": "hot", "warm": "warm", "archive": "archive"}


def _check_tiers(token: Token, tiers: set[str]) -> None:
    denied = sorted({_TIER_SCOPE.get(t, t) for t in tiers} - set(token.scope.tiers or ()))
    if token.scope.tiers is not None and denied:
        raise ApiError(403, f"Token {token.name!r} may not read the {', '.join(denied)} tier "
                            f"(its tiers: {token.scope.describe()['tiers']}); ask for a range "
                            "those tiers hold.")


async def price(request: Request) -> Response:
    """``GET /v1/price/{symbol}``: the newest traded price, from the hot tier."""
    gate: Gate = request.app.state.gate
    token, symbol = gate.admit_symbol(request, "price", request.path_params["symbol"])
    _check_tiers(token, {"hot"})
    exchange = request.query_params.get("exchange")
    value = await gate.run(lambda: gate.query.latest_price(symbol, exchange))
    if value is None:
        raise ApiError(404, f"No price for {symbol} in the hot tier: the stream service has not "
                            "written one (is `helios stream` running for it?).")
    return JSONResponse({"symbol": symbol, "exchange": exchange or gate.query.exchange,
                         "price": decimal_text(value), "tier": "hot"})


async def ohlcv(request: Request) -> Response:
    """``GET /v1/ohlcv/{symbol}``: closed candles in ``[start, end)`` or the last ``limit``."""
    gate: Gate = request.app.state.gate
    token, symbol = gate.admit_symbol(request, "ohlcv", request.path_params["symbol"])
    params = request.query_params
    timeframe, exchange = params.get("timeframe", "1m"), params.get("exchange")
    start, end, limit = (_moment(params.get("start")), _moment(params.get("end")),
                         _count("limit", params.get("limit"), gate.config.max_rows))

    def answer() -> tuple[set[str], list[dict[str, Any]]]:  # JSON built off the event loop
        frame = gate.query.ohlcv(symbol, timeframe, start, end, limit, exchange)
        if len(frame) > gate.config.max_rows:
            raise ApiError(400, f"{len(frame)} candles match; one answer carries up to "
                                f"{gate.config.max_rows}. Narrow start/end or pass limit.")
        return set(frame["tier"].unique()) if len(frame) else set(), candles_json(frame)

    tiers, candles = await gate.run(answer)
    _check_tiers(token, tiers)
    return JSONResponse({"symbol": symbol, "timeframe": timeframe,
                         "exchange": exchange or gate.query.exchange, "candles": candles})


async def quality(request: Request) -> Response:
    """``GET /v1/quality/{day}``: the day's data-quality status for the token's symbols."""
    gate: Gate = request.app.state.gate
    wanted = request.query_params.get("symbol")
    token, symbol = ((gate.admit(request, "quality"), None) if wanted is None
                     else gate.admit_symbol(request, "quality", wanted))
    day = _day(request.path_params["day"])
    venue = Venue(gate.query.exchange, gate.query.data_dir)
    stored = await gate.run(lambda: {p.symbol for p in gate.query.catalog.list_partitions(
        exchange=venue.exchange, timeframe=Timeframe.M1, start=day, end=day)})
    symbols = sorted(s for s in ({symbol} if symbol else stored) if token.scope.allows_symbol(s))
    if not symbols or (symbol is not None and symbol not in stored):
        whose = f"for {symbol}" if symbol else "for the symbols this token reads"
        raise ApiError(404, f"No stored 1m data on {venue.exchange} for {day} {whose}; "
                            "backfill the day first.")
    summary = await gate.run(lambda: summarize_day(venue, symbols, day))
    report = quality_report_path(venue.data_dir, day)
    return JSONResponse({"day": day.isoformat(), "exchange": venue.exchange,
                         "report_written": report.exists(), **quality_json(summary)})


async def indicators(request: Request) -> Response:
    """``GET /v1/indicators/{symbol}``: technical indicators, once the signals package is in."""
    gate: Gate = request.app.state.gate
    _, symbol = gate.admit_symbol(request, "indicators", request.path_params["symbol"])
    provider = gate.indicators
    if provider is None:
        raise ApiError(501, "Indicators are not served yet: this build has no indicator "
                            "provider (the signals package). Use /v1/ohlcv meanwhile.")
    params = dict(request.query_params)
    answer = await gate.run(lambda: provider(symbol, params))
    return JSONResponse({"symbol": symbol, "indicators": json_value(answer)})


async def openapi(request: Request) -> Response:
    """``GET /openapi.json``: the hand-written OpenAPI 3.1 description (no token needed)."""
    return JSONResponse(openapi_document())


async def _api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):  # Starlette routes only ApiError here
        raise exc
    return JSONResponse({"error": exc.message, "status": exc.status}, exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # Starlette routes only HTTPException here
        raise exc
    message = {404: f"No such endpoint {request.url.path!r}; see /openapi.json.",
               405: f"{request.method} is not allowed here; the endpoints answer GET."}
    return JSONResponse({"error": message.get(exc.status_code, exc.detail),
                         "status": exc.status_code}, exc.status_code, exc.headers)


def _moment(text: str | None) -> str | int | None:
    """Epoch milliseconds as a number, anything else as the query layer parses it."""
    return int(text) if text is not None and text.isdigit() else text


def _count(name: str, text: str | None, most: int) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or not 0 < int(text) <= most:
        raise ApiError(400, f"{name}={text!r}: give a whole number from 1 to {most}.")
    return int(text)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"day {text!r}: give a UTC day as YYYY-MM-DD.") from None


ROUTES = (("/v1/price/{symbol}", price), ("/v1/ohlcv/{symbol}", ohlcv),
          ("/v1/quality/{day}", quality), ("/v1/indicators/{symbol}", indicators),
          ("/openapi.json", openapi))


def create_app(query: MarketDataQuery, tokens: TokenStore, recorder: AccessRecorder,
               config: ApiConfig | None = None,
               indicators: IndicatorProvider | None = None) -> Starlette:
    """The ASGI app of the read API.

    Args:
        query: Answers the data routes.
        tokens: The token store requests are checked against.
        recorder: Called with an access record for every request.
        config: Limits (default :class:`ApiConfig`).
        indicators: Answers ``/v1/indicators``; ``None`` answers 501.
    """
    limits = config or ApiConfig()
    app = Starlette(
        routes=[Route(path, endpoint, methods=["GET"]) for path, endpoint in ROUTES],
        middleware=[Middleware(AccessMiddleware, recorder=recorder,
                               max_url_bytes=limits.max_url_bytes,
                               max_body_bytes=limits.max_body_bytes)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error})
    app.state.gate = Gate(query, tokens, limits, indicators)
    app.state.started = datetime.now(UTC)
    return app
