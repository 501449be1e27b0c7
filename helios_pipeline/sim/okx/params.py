"""Query checks, error codes and rate limits of the simulated OKX v5 public REST API.

Errors are answered as OKX does: ``{"code": "51001", "msg": "...", "data": []}`` with the code
as a string; parameter errors with HTTP 400, rate limiting (``50011``) with HTTP 429. Rate
limits are OKX's per-IP limits of each public endpoint, counted in 2-second windows of the wall
clock.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping

_INT = re.compile(r"^[0-9]{1,16}$")
_WINDOW_MS = 2000

RATE_LIMITS: dict[str, int] = {
    "/api/v5/public/instruments": 20,
    "/api/v5/public/time": 10,
    "/api/v5/market/tickers": 20,
    "/api/v5/market/ticker": 20,
    "/api/v5/market/books": 40,
    "/api/v5/market/candles": 40,
    "/api/v5/market/history-candles": 20,
    "/api/v5/market/trades": 100,
}
"""Requests allowed per 2 seconds and IP, per endpoint (OKX's published public limits)."""

INST_TYPES = frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})


class OkxError(Exception):
    """An error the API answers as ``{"code", "msg", "data": []}`` with an HTTP status."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        """Create the error answered with ``status`` and body ``{"code", "msg", "data"}``."""
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def empty_parameter(name: str) -> OkxError:
    """``50014``: a required parameter is missing."""
    return OkxError(400, "50014", f"Parameter {name} can not be empty.")


def parameter_error(name: str) -> OkxError:
    """``51000``: a parameter has a value OKX does not accept."""
    return OkxError(400, "51000", f"Parameter {name} error")


def unknown_instrument() -> OkxError:
    """``51001``: no such instrument."""
    return OkxError(400, "51001", "Instrument ID doesn't exist.")


def too_many_requests() -> OkxError:
    """``50011``: the endpoint's rate limit is used up (HTTP 429)."""
    return OkxError(429, "50011", "Too Many Requests")


def required(query: Mapping[str, str], name: str) -> str:
    """A parameter that must be present and non-empty (``50014`` otherwise)."""
    value = query.get(name, "")
    if not value:
        raise empty_parameter(name)
    return value


def optional_ms(query: Mapping[str, str], name: str) -> int | None:
    """An optional millisecond timestamp (``51000`` when it is not a non-negative integer)."""
    raw = query.get(name, "")
    if raw == "":
        return None
    if not _INT.match(raw):
        raise parameter_error(name)
    return int(raw)


def limit_param(query: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit``: ``default`` when absent, at most ``maximum``; ``51000`` when not 1 or more."""
    raw = query.get("limit", "")
    if raw == "":
        return default
    if not _INT.match(raw) or int(raw) < 1:
        raise parameter_error("limit")
    return min(int(raw), maximum)


def inst_type(query: Mapping[str, str]) -> str:
    """The required ``instType`` (``50014`` when absent, ``51000`` when unknown)."""
    value = required(query, "instType")
    if value not in INST_TYPES:
        raise parameter_error("instType")
    return value


class RequestRateLimiter:
    """OKX's per-endpoint request limits in 2-second windows of the wall clock."""

    def __init__(self, clock_ms: Callable[[], int], limits: Mapping[str, int] | None = None,
                 enabled: bool = True) -> None:
        """Count requests per endpoint against ``limits`` (default :data:`RATE_LIMITS`)."""
        self._clock = clock_ms
        self._limits = dict(RATE_LIMITS if limits is None else limits)
        self.enabled = enabled
        self._window = -1
        self._counts: Counter[str] = Counter()
        self.rejected = 0

    def reset(self) -> None:
        """Forget the current window's counts and the rejected total."""
        self._window = -1
        self._counts.clear()
        self.rejected = 0

    def admit(self, path: str) -> bool:
        """Count a request to ``path``; False when it goes over the endpoint's limit."""
        limit = self._limits.get(path)
        if not self.enabled or limit is None:
            return True
        window = self._clock() // _WINDOW_MS
        if window != self._window:
            self._window = window
            self._counts.clear()
        self._counts[path] += 1
        if self._counts[path] > limit:
            self.rejected += 1
            return False
        return True
