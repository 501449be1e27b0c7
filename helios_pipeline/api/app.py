"""The read API's HTTP service: Starlette routes over :class:`MarketDataQuery`.

Every data route runs the same gate (:meth:`Gate.admit`): a bearer token (401), its rate limit
(429 with ``Retry-After``), its scopes for the data kind, the symbol and the tiers (403). Queries
run in a worker thread under a deadline (504); a bad argument is a 400 with the query layer's
message; a tier that is down a 503. :class:`~helios_pipeline.api.middleware.AccessMiddleware`
refuses oversized requests (413) and records every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helios_pipeline.api.access import AccessRecorder
from helios_pipeline.api.errors import ApiError
from helios_pipeline.api.limits import RateLimiter, retry_after
from helios_pipeline.api.middleware import AccessMiddleware
from helios_pipeline.api.openapi import openapi_document
from helios_pipeline.api.tokens import AuthError, Token, TokenStore
from helios_pipeline.api.views import candles_json, decimal_text, json_value, quality_json
from helios_pipeline.domain.symbols import SymbolError, normalize_symbol
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.quality.daily import Venue, summarize_day
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.query.errors import QueryError, TierUnavailableError
from helios_pipeline.storage.paths import quality_report_path
from helios_pipeline.storage.versions import VersionNotKeptError

T = TypeVar("T")

# Indicators come from the signals package, built separately; the service takes any callable
# (symbol, query parameters) -> JSON-able answer and answers 501 while there is none.
IndicatorProvider = Callable[[str, Mapping[str, str]], Any]

# ``current`` (the hourly flush of live minutes) is the hot tier's data, kept on disk.
_TIER_SCOPE = {"hot": "hot", "current": "hot", "warm": "warm", "archive": "archive"}


@dataclass(frozen=True)
class ApiConfig:
    """Limits of the service.

    Attributes:
        query_timeout_s: A query still running after this is answered 504.
        rate_window_s: The window of each token's rate (60: requests per minute).
        max_url_bytes: Longest path plus query string (413 beyond).
        max_body_bytes: Largest request body (413 beyond); the endpoints take none.
        max_rows: Most candles one answer carries (400 beyond: narrow the range).
    """

    query_timeout_s: float = 10.0
    rate_window_s: float = 60.0
    max_url_bytes: int = 2048
    max_body_bytes: int = 1024
    max_rows: int = 10_000


@dataclass
class Gate:
    """Authentication, rate limits, scopes and the query deadline, shared by the routes."""

    query: MarketDataQuery
    tokens: TokenStore
    config: ApiConfig
    indicators: IndicatorProvider | None = None
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.config.rate_window_s)

    def admit(self, request: Request, kind: str) -> Token:
        """The request's token, once it may ask for ``kind`` now.

        Raises:
            ApiError: 401 (token), 429 (rate) or 403 (kind), in that order.
        """
        token = self._authenticate(request)
        request.state.token = token.name
        wait = self.limiter.admit(token.name, token.rate_per_min)
        if wait is not None:
            raise ApiError(429, f"Token {token.name!r} is over its rate of {token.rate_per_min} "
                                f"requests per {self.config.rate_window_s:g} s; retry in "
                                f"{retry_after(wait)} s.", {"Retry-After": retry_after(wait)})
        if kind not in token.scope.kinds:
            raise ApiError(403, f"Token {token.name!r} may not read {kind} data (its kinds: "
                                f"{', '.join(sorted(token.scope.kinds))}).")
        return token

    def admit_symbol(self, request: Request, kind: str, text: str) -> tuple[Token, str]:
        """:meth:`admit`, then the unified symbol of ``text`` if the token covers it.

        Raises:
            ApiError: As :meth:`admit`, then 400 (not a symbol) or 403 (symbol).
        """
        request.state.symbol = _unified(text) or text  # recorded as asked, whatever the outcome
        token = self.admit(request, kind)
        symbol = symbol_arg(text)
        if not token.scope.allows_symbol(symbol):
            raise ApiError(403, f"Token {token.name!r} may not read {symbol} (its symbols: "
                                f"{token.scope.describe()['symbols']}).")
        return token, symbol

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread under the query deadline, errors mapped to statuses."""
        try:
            with anyio.fail_after(self.config.query_timeout_s):
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError:
            raise ApiError(504, f"The query took longer than {self.config.query_timeout_s:g} s; "
                                "ask for a shorter range or fewer rows.") from None
        except (QueryError, SymbolError) as exc:
            raise ApiError(400, str(exc)) from None
        except VersionNotKeptError as exc:
            raise ApiError(410, str(exc)) from None
        except TierUnavailableError as exc:
            raise ApiError(503, str(exc)) from None

    def _authenticate(self, request: Request) -> Token:
        header = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": 'Bearer realm="helios"'}
        if header is None:
            raise ApiError(401, "No token: send 'Authorization: Bearer <token>' (create one "
                                "with `helios tokens create`).", challenge)
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip() or " " in secret.strip():
            raise ApiError(401, "Malformed Authorization header: expected 'Bearer <token>'.",
                           challenge)
        try:
            return self.tokens.authenticate(secret.strip())
        except AuthError as exc:
            raise ApiError(401, str(exc), challenge) from None


def symbol_arg(text: str) -> str:
    """The unified symbol of ``text`` (``BTC-USDT``, ``BTCUSDT`` or ``btc-usdt``).

    Raises:
        ApiError: 400 when it is not a symbol.
    """
    symbol = _unified(text)
    if symbol is None:
        raise ApiError(400, f"symbol {text!r} is not a symbol: write it as BTC-USDT or "
                            "BTCUSDT.")
    return symbol


def _unified(text: str) -> str | None:
    try:
        return normalize_symbol(text.replace("-", "/"))
    except SymbolError:
        return None


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
    frame = await gate.run(lambda: gate.query.ohlcv(symbol, timeframe, start, end, limit,
                                                    exchange))
    if len(frame) > gate.config.max_rows:
        raise ApiError(400, f"{len(frame)} candles match; one answer carries up to "
                            f"{gate.config.max_rows}. Narrow start/end or pass limit.")
    _check_tiers(token, set(frame["tier"].unique()) if len(frame) else set())
    return JSONResponse({"symbol": symbol, "timeframe": timeframe,
                         "exchange": exchange or gate.query.exchange,
                         "candles": candles_json(frame)})


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
