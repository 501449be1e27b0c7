"""Adaptive per-exchange request-weight limiter fed by the exchange's own weight headers.

Binance counts request weight per IP in wall-clock minute windows and reports the running total
in ``X-MBX-USED-WEIGHT-1M`` on every response. The limiter keeps the last reported value, adds
the weight of the requests sent since, and holds a request back until the next minute window
when sending it would take the window over ``safety_fraction`` of the limit. A 429 (Retry-After)
blocks every request until the time the exchange gave; a 418 ban makes every request fail at
once with :class:`ExchangeBannedError` so that a ban is never hammered.

Requests already in flight when a header arrives are not in that header yet; the safety margin
(20 % by default) absorbs them.

The header counts every process on this IP (the live stream, backfills, the trading bot), so the
budget is shared across them. A caller with lower priority passes a smaller ``share`` to
:meth:`AdaptiveRateLimiter.acquire`: batch work (backfills, re-fetches) waits for the next window
once the IP's weight reaches that share, leaving the rest of the window to the live path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from helios_pipeline.exchanges.errors import ExchangeBannedError

WINDOW_MS = 60_000
DEFAULT_WEIGHT_LIMIT = 6000
DEFAULT_SAFETY_FRACTION = 0.8

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class AdaptiveRateLimiter:
    """Keeps one exchange's request weight under its per-minute budget.

    Args:
        exchange: ccxt exchange id, used in messages.
        weight_limit: Request weight allowed per minute (exchangeInfo ``REQUEST_WEIGHT``).
        safety_fraction: Share of ``weight_limit`` the limiter lets this process use.
        clock: Wall-clock seconds since the epoch (``time.time``); injectable for tests.
        sleep: Coroutine that waits the given seconds (``asyncio.sleep``); injectable for tests.

    Raises:
        ValueError: ``weight_limit`` is not positive or ``safety_fraction`` not in (0, 1].
    """

    def __init__(
        self,
        exchange: str,
        weight_limit: int = DEFAULT_WEIGHT_LIMIT,
        safety_fraction: float = DEFAULT_SAFETY_FRACTION,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < safety_fraction <= 1:
            raise ValueError(
                f"safety_fraction={safety_fraction} for {exchange}: expected a share in (0, 1]."
            )
        self.exchange = exchange
        self.safety_fraction = safety_fraction
        self._clock = clock
        self._sleep = sleep
        self._weight_limit = DEFAULT_WEIGHT_LIMIT
        self.set_weight_limit(weight_limit)
        self._window_start_ms = 0
        self._observed = 0
        self._sent_since = 0
        self._blocked_until_ms = 0
        self._block_reason = ""
        self._banned_until_ms = 0
        self._ban_reason = ""
        self.waits = 0
        self.waited_s = 0.0
        self.weight_spent = 0  # every request's weight over the limiter's life (reports)

    @property
    def weight_limit(self) -> int:
        """Request weight the exchange allows per minute."""
        return self._weight_limit

    @property
    def budget(self) -> int:
        """Weight this limiter lets through per minute window (limit x safety fraction)."""
        return int(self._weight_limit * self.safety_fraction)

    @property
    def blocked_until_ms(self) -> int | None:
        """End of the current 429 block (epoch ms), or ``None`` when requests may go."""
        return self._blocked_until_ms if self._now_ms() < self._blocked_until_ms else None

    def set_weight_limit(self, weight_limit: int) -> None:
        """Change the per-minute weight limit (e.g. after reading exchangeInfo).

        Raises:
            ValueError: ``weight_limit`` is not a positive integer.
        """
        if isinstance(weight_limit, bool) or not isinstance(weight_limit, int) or weight_limit <= 0:
            raise ValueError(
                f"weight_limit={weight_limit!r} for {self.exchange}: expected a positive integer "
                "(exchangeInfo rateLimits REQUEST_WEIGHT per minute, 6000 on Binance spot)."
            )
        self._weight_limit = weight_limit

    def configure(self, rate_limits: Iterable[Mapping[str, Any]]) -> bool:
        """Adopt the per-minute ``REQUEST_WEIGHT`` limit from exchangeInfo ``rateLimits``.

        Returns:
            Whether a usable one-minute REQUEST_WEIGHT entry was found and applied.
        """
        for entry in rate_limits:
            if (
                entry.get("rateLimitType") == "REQUEST_WEIGHT"
                and entry.get("interval") == "MINUTE"
                and entry.get("intervalNum") == 1
                and isinstance(entry.get("limit"), int)
                and entry["limit"] > 0
            ):
                self.set_weight_limit(entry["limit"])
                return True
        return False

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _roll(self, now_ms: int) -> None:
        """Start a fresh count when the wall-clock minute window has changed."""
        window = now_ms - now_ms % WINDOW_MS
        if window != self._window_start_ms:
            self._window_start_ms = window
            self._observed = 0
            self._sent_since = 0

    def projected(self, weight: int = 0) -> int:
        """Weight the current window would reach with one more request of ``weight``."""
        self._roll(self._now_ms())
        return self._observed + self._sent_since + weight

    def budget_for(self, share: float | None) -> int:
        """Per-window weight a caller limited to ``share`` of the limit may reach.

        ``None`` is the limiter's own budget; a share is capped by the safety fraction.
        """
        if share is None:
            return self.budget
        return int(self._weight_limit * min(share, self.safety_fraction))

    async def acquire(self, weight: int = 1, share: float | None = None) -> None:
        """Wait until a request of ``weight`` may be sent, then count it.

        Args:
            weight: The request's weight.
            share: Share of the per-minute limit this caller may take the window to (lower
                priority than the live path); ``None``: the whole budget.

        Raises:
            ExchangeBannedError: The exchange banned this IP and the ban has not ended; raised
                at once, without waiting.
            ValueError: ``weight`` alone is larger than the caller's per-minute budget.
        """
        budget = self.budget_for(share)
        if weight > budget:
            raise ValueError(
                f"A request of weight {weight} can never fit {self.exchange}'s budget of "
                f"{budget} per minute; raise the weight limit, safety fraction or share."
            )
        while True:
            now_ms = self._now_ms()
            self.check_ban(now_ms)
            if now_ms < self._blocked_until_ms:
                await self._wait_ms(self._blocked_until_ms - now_ms)
                continue
            self._roll(now_ms)
            if self._observed + self._sent_since + weight > budget:
                await self._wait_ms(self._window_start_ms + WINDOW_MS - now_ms)
                continue
            self._sent_since += weight
            self.weight_spent += weight
            return

    async def _wait_ms(self, delay_ms: int) -> None:
        self.waits += 1
        self.waited_s += delay_ms / 1000
        await self._sleep(delay_ms / 1000)

    def check_ban(self, now_ms: int | None = None) -> None:
        """Raise if a ban is in force.

        Raises:
            ExchangeBannedError: The exchange banned this IP and the ban has not ended.
        """
        now = self._now_ms() if now_ms is None else now_ms
        if now < self._banned_until_ms:
            raise ExchangeBannedError(
                self.exchange, self._banned_until_ms / 1000, self._ban_reason, now / 1000
            )

    def observe(self, used_weight_1m: int, at_ms: int) -> None:
        """Adopt the exchange's ``X-MBX-USED-WEIGHT-1M`` value received at ``at_ms``.

        A value from an earlier window than the current one is stale and ignored.
        """
        self._roll(self._now_ms())
        window = at_ms - at_ms % WINDOW_MS
        if window < self._window_start_ms:
            return
        self._observed = max(0, used_weight_1m)
        self._sent_since = 0

    def block_for(self, seconds: float, reason: str) -> None:
        """Hold every request back for ``seconds`` (a 429's Retry-After)."""
        until = self._now_ms() + int(max(0.0, seconds) * 1000)
        if until > self._blocked_until_ms:
            self._blocked_until_ms = until
            self._block_reason = reason

    def ban_until(self, until_ms: int, reason: str) -> None:
        """Refuse every request until ``until_ms`` (a 418 ban's end)."""
        if until_ms > self._banned_until_ms:
            self._banned_until_ms = until_ms
            self._ban_reason = reason

    def snapshot(self) -> dict[str, Any]:
        """Current state, for health reports and tests."""
        now_ms = self._now_ms()
        self._roll(now_ms)
        return {
            "exchange": self.exchange,
            "weight_limit": self._weight_limit,
            "budget": self.budget,
            "window_start_ms": self._window_start_ms,
            "observed_weight": self._observed,
            "sent_since_observed": self._sent_since,
            "projected_weight": self._observed + self._sent_since,
            "blocked_until_ms": self._blocked_until_ms if now_ms < self._blocked_until_ms else None,
            "block_reason": self._block_reason if now_ms < self._blocked_until_ms else "",
            "banned_until_ms": self._banned_until_ms if now_ms < self._banned_until_ms else None,
            "ban_reason": self._ban_reason if now_ms < self._banned_until_ms else "",
            "waits": self.waits,
            "waited_s": round(self.waited_s, 3),
            "weight_spent": self.weight_spent,
        }
