"""Per-exchange circuit breaker: stop calling an exchange that keeps failing, then probe it.

CLOSED counts consecutive failures; ``failure_threshold`` of them open the circuit. OPEN fails
every call at once with :class:`CircuitOpenError` until the recovery window has passed; then the
circuit is HALF_OPEN and lets exactly one trial call through. A successful trial closes it; a
failed trial re-opens it for the long window, and every further trip uses the long window until a
success resets the count. Outcomes that say nothing about the exchange's health (a bad symbol, a
429) are reported with :meth:`CircuitBreaker.record_ignored`, which only frees the trial slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from helios_pipeline.exchanges.errors import CircuitOpenError

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RECOVERY_S = 30.0
DEFAULT_LONG_RECOVERY_S = 300.0


class CircuitState(StrEnum):
    """Breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Fail fast while an exchange is down.

    Args:
        exchange: ccxt exchange id, used in messages.
        failure_threshold: Consecutive failures that open the circuit.
        recovery_s: Seconds the circuit stays open after the first trip.
        long_recovery_s: Seconds it stays open after a failed trial (repeated trips).
        clock: Seconds since the epoch (``time.time``); injectable for tests.

    Raises:
        ValueError: A threshold or window is not positive.
    """

    def __init__(
        self,
        exchange: str,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        recovery_s: float = DEFAULT_RECOVERY_S,
        long_recovery_s: float = DEFAULT_LONG_RECOVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failure_threshold < 1 or recovery_s <= 0 or long_recovery_s <= 0:
            raise ValueError(
                f"Circuit breaker for {exchange}: failure_threshold={failure_threshold}, "
                f"recovery_s={recovery_s}, long_recovery_s={long_recovery_s}; all must be > 0."
            )
        self.exchange = exchange
        self.failure_threshold = failure_threshold
        self.recovery_s = recovery_s
        self.long_recovery_s = long_recovery_s
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._retry_at: float | None = None
        self._trips = 0
        self._total_trips = 0
        self._trial_in_flight = False

    def _refresh(self) -> None:
        """Move OPEN to HALF_OPEN once the recovery window has passed."""
        if (
            self._state is CircuitState.OPEN
            and self._retry_at is not None
            and self._clock() >= self._retry_at
        ):
            self._state = CircuitState.HALF_OPEN
            self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        """Current state (OPEN turns into HALF_OPEN when the window has passed)."""
        self._refresh()
        return self._state

    def before_call(self) -> None:
        """Admit a call, or refuse it.

        Every admitted call must be followed by exactly one of :meth:`record_success`,
        :meth:`record_failure` or :meth:`record_ignored`.

        Raises:
            CircuitOpenError: The circuit is open, or half-open with its trial call in flight.
        """
        self._refresh()
        if self._state is CircuitState.CLOSED:
            return
        if self._state is CircuitState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        raise CircuitOpenError(
            self.exchange,
            self._opened_at or 0.0,
            self._retry_at or 0.0,
            self._failures,
            self._clock(),
        )

    def record_success(self) -> None:
        """The exchange answered properly: close the circuit and reset the counts."""
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._trips = 0
        self._opened_at = None
        self._retry_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """The exchange failed (network, timeout, 5xx, malformed payload)."""
        self._refresh()
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN and self._trial_in_flight:
            self._open(self.long_recovery_s)
        elif self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
            self._open(self.recovery_s)

    def record_ignored(self) -> None:
        """The call ended in a way that says nothing about the exchange's health."""
        self._trial_in_flight = False

    def _open(self, window_s: float) -> None:
        now = self._clock()
        self._state = CircuitState.OPEN
        self._opened_at = now
        self._retry_at = now + window_s
        self._trips += 1
        self._total_trips += 1
        self._trial_in_flight = False

    def snapshot(self) -> dict[str, Any]:
        """Current state, for health reports and tests."""
        return {
            "exchange": self.exchange,
            "state": self.state.value,
            "consecutive_failures": self._failures,
            "opened_at": self._opened_at,
            "retry_at": self._retry_at,
            "trips": self._trips,
            "total_trips": self._total_trips,
        }
