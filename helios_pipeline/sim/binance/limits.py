"""Request weights and the per-minute weight budget of the simulated exchange.

Weights follow Binance spot. The budget is counted in windows aligned to wall-clock minutes:
a request that takes the window over the limit is answered 429 with ``Retry-After`` = seconds
to the next minute; a client that keeps sending while told to back off is banned (418) for
2 minutes, doubling on every further ban up to 3 days.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from helios_pipeline.domain.timeframe import MINUTE_MS

_MAX_BAN_S = 3 * 24 * 3600
_FIXED_WEIGHT = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/aggTrades": 4,
    "/api/v3/trades": 25,
}


def wall_clock_ms() -> int:
    """Current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def _symbols_count(query: Mapping[str, str]) -> int | None:
    """Number of symbols in a ``symbols`` JSON array parameter (None when absent/invalid)."""
    raw = query.get("symbols")
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return len(parsed) if isinstance(parsed, list) else None


def _depth_weight(query: Mapping[str, str]) -> int:
    raw = query.get("limit", "100")
    limit = int(raw) if raw.isdigit() else 100
    for bound, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= bound:
            return weight
    return 250


def request_weight(path: str, query: Mapping[str, str]) -> int:
    """Weight Binance charges for a GET of ``path`` with ``query`` parameters."""
    if path in _FIXED_WEIGHT:
        return _FIXED_WEIGHT[path]
    if path == "/api/v3/depth":
        return _depth_weight(query)
    has_symbol = "symbol" in query
    if path == "/api/v3/ticker/24hr":
        count = _symbols_count(query)
        if has_symbol:
            return 2
        if count is None:
            return 80
        return 2 if count <= 20 else (40 if count <= 100 else 80)
    if path in ("/api/v3/ticker/bookTicker", "/api/v3/ticker/price"):
        return 2 if has_symbol else 4
    return 1


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer for one request.

    Attributes:
        status: 200 (go ahead), 429 (over budget) or 418 (banned).
        used: Weight used in the current window, this request included.
        retry_after_s: Seconds to wait (429/418), else 0.
        banned_until_ms: End of the ban (418), else 0.
    """

    status: int
    used: int
    retry_after_s: int = 0
    banned_until_ms: int = 0


class WeightLimiter:
    """Per-minute request-weight budget with 429 back-off and escalating 418 bans."""

    def __init__(self, limit: int = 6000, clock_ms: Callable[[], int] = wall_clock_ms,
                 ban_after: int = 3, first_ban_s: int = 120) -> None:
        """Create a budget of ``limit`` weight per wall-clock minute.

        Args:
            limit: Weight allowed per minute.
            clock_ms: Wall clock (epoch ms) that delimits the windows and bans.
            ban_after: Requests tolerated while backing off before the ban.
            first_ban_s: Length of the first ban; each further ban doubles it.
        """
        self.limit = limit
        self._clock = clock_ms
        self._ban_after = ban_after
        self._first_ban_s = first_ban_s
        self.reset()

    def reset(self) -> None:
        """Forget used weight, back-off and bans."""
        self._window = -1
        self._used = 0
        self._backoff_until = 0
        self._violations = 0
        self._bans = 0
        self._banned_until = 0

    def used(self) -> int:
        """Weight used in the current window."""
        self._roll(self._clock())
        return self._used

    def _roll(self, now: int) -> None:
        window = now // MINUTE_MS
        if window != self._window:
            self._window, self._used = window, 0

    def admit(self, weight: int) -> Verdict:
        """Charge ``weight`` for a request and say whether it may be served."""
        now = self._clock()
        self._roll(now)
        if now < self._banned_until:
            return self._banned(now)
        self._used += weight
        if self._used <= self.limit:
            return Verdict(200, self._used)
        if now < self._backoff_until:
            self._violations += 1
            if self._violations >= self._ban_after:
                seconds = min(_MAX_BAN_S, self._first_ban_s * 2**self._bans)
                self._bans += 1
                self._banned_until = now + seconds * 1000
                return self._banned(now)
        else:
            self._violations = 0
        next_window = (now // MINUTE_MS + 1) * MINUTE_MS
        self._backoff_until = next_window
        return Verdict(429, self._used, math.ceil((next_window - now) / 1000))

    def _banned(self, now: int) -> Verdict:
        return Verdict(418, self._used, math.ceil((self._banned_until - now) / 1000),
                       self._banned_until)
