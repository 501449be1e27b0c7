"""One circuit breaker, rate limiter and in-flight cap per exchange for the whole process.

Every ``ExchangeClient`` built with ``shared=True`` (what the Dagster resources build, one per
asset chunk, check or sensor tick) draws on the same three guards for its exchange and address:
a breaker opened by one run stays open for the next, the weight budget is one budget, and the
cap on requests in flight holds across runs, threads and event loops. They are keyed by exchange
id and base URL: one venue, one IP budget.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from types import TracebackType

from helios_pipeline.exchanges.breaker import CircuitBreaker
from helios_pipeline.exchanges.ratelimit import AdaptiveRateLimiter

_POLL_S = 0.002  # how often a request waiting for a free slot looks again


class InFlightCap:
    """At most ``limit`` requests in flight, across every thread and event loop of the process.

    ``asyncio.Semaphore`` belongs to one event loop, and each Dagster run or sensor tick runs its
    own; this cap is a thread-safe semaphore that a coroutine waits on without blocking its loop.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_in_flight={limit}: at least 1 request must be allowed.")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    async def __aenter__(self) -> None:
        """Take a slot, yielding to the event loop while none is free."""
        # An asyncio.Event would belong to one loop; the slot may be freed from another.
        while not self._slots.acquire(blocking=False):  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Give the slot back."""
        self._slots.release()


@dataclass(frozen=True)
class ExchangeGuards:
    """The process-wide guards of one exchange and address."""

    breaker: CircuitBreaker
    limiter: AdaptiveRateLimiter
    cap: InFlightCap


_GUARDS: dict[tuple[str, str | None], ExchangeGuards] = {}
_LOCK = threading.Lock()


def shared_guards(exchange_id: str, base_url: str | None, max_in_flight: int) -> ExchangeGuards:
    """The guards of ``exchange_id`` at ``base_url``, created on first use.

    ``max_in_flight`` sizes the cap when it is created; later callers share that cap.
    """
    with _LOCK:
        key = (exchange_id, base_url)
        guards = _GUARDS.get(key)
        if guards is None:
            guards = _GUARDS[key] = ExchangeGuards(
                CircuitBreaker(exchange_id), AdaptiveRateLimiter(exchange_id),
                InFlightCap(max_in_flight))
        return guards
