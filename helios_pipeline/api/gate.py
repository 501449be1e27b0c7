"""The gate every data route of the read API passes: token, rate, scopes, and the deadline.

:meth:`Gate.admit` checks, in this order, a bearer token (401), its rate limit (429 with
``Retry-After``) and its data kinds (403); :meth:`Gate.admit_symbol` then the symbol (400 if it
is not one, 403 if out of scope). :meth:`Gate.run` runs a query in a worker thread under the
deadline (504) and maps the query layer's errors to statuses (400, 410, 503).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from helios_pipeline.api.errors import ApiError
from helios_pipeline.api.limits import RateLimiter, retry_after
from helios_pipeline.api.tokens import AuthError, Token, TokenStore
from helios_pipeline.domain.symbols import SymbolError, normalize_symbol
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.query.errors import QueryError, TierUnavailableError
from helios_pipeline.storage.versions import VersionNotKeptError

T = TypeVar("T")

# Indicators come from the signals package, built separately; the service takes any callable
# (symbol, query parameters) -> JSON-able answer (raising QueryError for a bad parameter) and
# answers 501 while there is none.
IndicatorProvider = Callable[[str, Mapping[str, str]], Any]


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
