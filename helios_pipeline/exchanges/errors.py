"""Typed errors raised by the exchange layer.

Each message says what went wrong, with which exchange / endpoint / symbol, and what to do about
it. Callers catch :class:`ExchangeError` to handle every failure of this layer in one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from helios_pipeline.domain.timeframe import ms_to_datetime
from helios_pipeline.security.redact import redact

_EXCERPT_CHARS = 120


def excerpt(text: object, limit: int = _EXCERPT_CHARS) -> str:
    """A short one-line preview of a payload for error messages.

    Args:
        text: Anything; it is converted with ``repr`` unless it is already a string.
        limit: Maximum characters kept before the ``...`` marker.
    """
    shown = text if isinstance(text, str) else repr(text)
    shown = " ".join(shown.split())
    return shown if len(shown) <= limit else f"{shown[:limit]}..."


def _utc(seconds: float) -> str:
    """ISO-8601 UTC rendering of an epoch in seconds, to the second."""
    return ms_to_datetime(int(seconds * 1000)).strftime("%Y-%m-%dT%H:%M:%SZ")


class ExchangeError(Exception):
    """Base class of every error the exchange layer raises.

    Its text is masked (a signed URL's ``signature=``, an ``apiKey``), wherever it ends up:
    logs, the CLI, Dagster's stored failure events.
    """

    def __str__(self) -> str:
        return redact(super().__str__())


class ExchangeUnavailableError(ExchangeError):
    """An exchange call failed on every attempt the retry policy allows.

    Attributes:
        exchange: ccxt exchange id.
        endpoint: The call that failed (e.g. ``klines BTCUSDT``).
        attempts: How many attempts were made.
        cause: The error of the last attempt.
    """

    def __init__(
        self,
        exchange: str,
        endpoint: str,
        attempts: int,
        cause: BaseException | None,
        base_url: str | None = None,
        note: str = "",
    ) -> None:
        self.exchange = exchange
        self.endpoint = endpoint
        self.attempts = attempts
        self.cause = cause
        where = base_url or "the exchange's public API"
        last = f"{type(cause).__name__}: {excerpt(str(cause), 200)}" if cause else "unknown"
        super().__init__(
            f"{exchange} {endpoint} failed after {attempts} attempt(s){note}; last error: {last}. "
            f"Check that {where} is reachable (HELIOS_EXCHANGE_URL overrides the address) and "
            "that the exchange is up; the call can be retried later."
        )


class ExchangeBannedError(ExchangeError):
    """The exchange banned this IP (HTTP 418); no request is sent until the ban ends.

    Attributes:
        exchange: ccxt exchange id.
        until_s: Epoch seconds at which the ban ends.
        reason: What the exchange said.
    """

    def __init__(self, exchange: str, until_s: float, reason: str, now_s: float) -> None:
        self.exchange = exchange
        self.until_s = until_s
        self.reason = reason
        super().__init__(
            f"{exchange} has banned this IP until {_utc(until_s)} "
            f"(another {max(0.0, until_s - now_s):.0f} s): {excerpt(reason)}. No request is sent "
            "until then. Bans follow ignored 429s: lower HELIOS_MAX_IN_FLIGHT or the request "
            "rate, and make sure no other process shares this IP's weight budget."
        )


class CircuitOpenError(ExchangeError):
    """The circuit breaker of an exchange is open: the call fails fast without a request.

    Attributes:
        exchange: ccxt exchange id.
        opened_at_s: Epoch seconds when the circuit opened.
        retry_at_s: Epoch seconds from which a trial call is let through.
    """

    def __init__(
        self, exchange: str, opened_at_s: float, retry_at_s: float, failures: int, now_s: float
    ) -> None:
        self.exchange = exchange
        self.opened_at_s = opened_at_s
        self.retry_at_s = retry_at_s
        if now_s >= retry_at_s:
            when = "a trial call is in progress now"
        else:
            wait = retry_at_s - now_s
            when = f"a trial call is let through at {_utc(retry_at_s)} (in {wait:.1f} s)"
        super().__init__(
            f"{exchange} circuit is open since {_utc(opened_at_s)} after {failures} consecutive "
            f"failure(s); {when}. Calls fail fast until then: check the exchange's status and "
            "HELIOS_EXCHANGE_URL."
        )


class ExchangeDataError(ExchangeError):
    """The exchange answered with a payload that cannot be used (malformed, truncated, bad row).

    Attributes:
        source: What was being read: url, endpoint and/or symbol.
        payload_excerpt: The start of the offending payload or row.
    """

    def __init__(self, problem: str, source: str, payload: object = "") -> None:
        self.problem = problem
        self.source = source
        self.payload_excerpt = excerpt(payload)
        shown = f" Payload starts: {self.payload_excerpt}" if self.payload_excerpt else ""
        super().__init__(
            f"Unusable data from {source}: {problem}.{shown} Nothing from this call was kept; "
            "if it persists, the exchange (or HELIOS_EXCHANGE_URL) is serving a broken API."
        )


class ExchangeRequestError(ExchangeError):
    """The exchange refused the request itself (HTTP 4xx other than 418/429); not retried.

    Attributes:
        exchange: ccxt exchange id.
        endpoint: The call that was refused.
        detail: What the exchange said.
    """

    def __init__(self, exchange: str, endpoint: str, detail: str) -> None:
        self.exchange = exchange
        self.endpoint = endpoint
        self.detail = detail
        super().__init__(
            f"{exchange} refused {endpoint}: {excerpt(detail, 200)}. Retrying the same request "
            "will not help: check the symbol, timeframe and time range it was given."
        )


class UnknownSymbolError(ExchangeError):
    """The exchange has no market for the requested symbol.

    Attributes:
        exchange: ccxt exchange id.
        symbol: The symbol asked for.
        suggestions: Close known symbols (at most five).
    """

    def __init__(self, exchange: str, symbol: str, known: Iterable[str]) -> None:
        self.exchange = exchange
        self.symbol = symbol
        known_list = sorted(known)
        self.suggestions = difflib.get_close_matches(symbol.upper(), known_list, n=5, cutoff=0.5)
        hint = (
            f"Close matches: {', '.join(self.suggestions)}."
            if self.suggestions
            else f"It knows {len(known_list)} symbols; none is close."
        )
        super().__init__(
            f"Unknown symbol {symbol!r} on {exchange}. {hint} Use a ccxt unified symbol such as "
            "'BTC/USDT' listed by load_markets()."
        )

    @classmethod
    def for_symbol(cls, symbol: str, exchange: str, known: Iterable[str]) -> UnknownSymbolError:
        """The error for ``symbol`` missing from ``exchange``'s ``known`` symbols."""
        return cls(exchange, symbol, known)
