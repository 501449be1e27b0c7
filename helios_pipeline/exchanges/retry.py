"""Retry policy (full-jitter exponential backoff) and the classification of exchange failures.

One table decides, for every failure, whether the call is tried again and whether it counts
against the circuit breaker:

==================  ==============================================  =====  =======
kind                what                                            retry  breaker
==================  ==============================================  =====  =======
TRANSIENT           network error, timeout, HTTP 5xx                yes    yes
MALFORMED           unparseable / truncated payload, bad kline row  yes    yes
RATE_LIMITED        HTTP 429: waits for Retry-After, not backoff    yes    no
BANNED              HTTP 418: never retried, never hammered         no     no
USER_ERROR          bad symbol, bad request, other HTTP 4xx         no     no
FATAL               anything else (bugs, unsupported calls)         no     no
==================  ==============================================  =====  =======

Retries never go beyond ``max_attempts`` attempts in total.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

import ccxt

from helios_pipeline.exchanges.errors import ExchangeBannedError, ExchangeDataError

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BASE_DELAY_S = 0.5
DEFAULT_MAX_DELAY_S = 30.0


class FailureKind(StrEnum):
    """How a failed exchange call is handled; see the module table."""

    TRANSIENT = "transient"
    MALFORMED = "malformed"
    RATE_LIMITED = "rate_limited"
    BANNED = "banned"
    USER_ERROR = "user_error"
    FATAL = "fatal"

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed."""
        return self in _RETRYABLE

    @property
    def counts_against_breaker(self) -> bool:
        """Whether the failure says the exchange is unhealthy."""
        return self in _BREAKER_FAILURES


_RETRYABLE = frozenset({FailureKind.TRANSIENT, FailureKind.MALFORMED, FailureKind.RATE_LIMITED})
_BREAKER_FAILURES = frozenset({FailureKind.TRANSIENT, FailureKind.MALFORMED})


def classify(error: BaseException, status: int | None = None) -> FailureKind:
    """Classify a failed exchange call.

    Args:
        error: What the call raised.
        status: HTTP status of the response, when one arrived. It outranks the exception class:
            ccxt maps statuses to classes loosely (a 400 can surface as ExchangeNotAvailable,
            a 418 ban as DDoSProtection, a NetworkError subclass).
    """
    if isinstance(error, ExchangeDataError | ccxt.BadResponse):
        return FailureKind.MALFORMED
    if status == 418 or isinstance(error, ExchangeBannedError):
        return FailureKind.BANNED
    if status == 429 or isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return FailureKind.RATE_LIMITED
    if isinstance(error, ccxt.BadRequest):
        return FailureKind.USER_ERROR
    if status is not None and (status >= 500 or status == 408):
        return FailureKind.TRANSIENT
    if status is not None and 400 <= status < 500:
        return FailureKind.USER_ERROR
    if isinstance(error, ccxt.NetworkError | TimeoutError | ConnectionError):
        return FailureKind.TRANSIENT
    return FailureKind.FATAL


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again.

    Delays use "full jitter": the wait after the n-th failed attempt is uniform in
    ``[0, min(max_delay_s, base_delay_s * 2 ** (n - 1))]``, which spreads out the retries of many
    concurrent callers.

    Attributes:
        max_attempts: Attempts in total, the first included.
        base_delay_s: Backoff envelope after the first failure.
        max_delay_s: Cap of the envelope.
        rng: Random source for the jitter; pass a seeded ``random.Random`` for reproducible tests.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay_s: float = DEFAULT_BASE_DELAY_S
    max_delay_s: float = DEFAULT_MAX_DELAY_S
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Reject settings that cannot work.

        Raises:
            ValueError: ``max_attempts`` < 1 or a delay is negative or the cap below the base.
        """
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts={self.max_attempts}: at least 1 attempt is needed.")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError(
                f"base_delay_s={self.base_delay_s}, max_delay_s={self.max_delay_s}: need "
                "0 <= base_delay_s <= max_delay_s."
            )

    def envelope(self, attempt: int) -> float:
        """Largest wait after failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt, 1) - 1, 62)
        return float(min(self.max_delay_s, self.base_delay_s * 2**exponent))

    def delay(self, attempt: int) -> float:
        """Jittered wait after failed attempt number ``attempt`` (1-based)."""
        return self.rng.uniform(0.0, self.envelope(attempt))

    def should_retry(self, kind: FailureKind, attempt: int) -> bool:
        """Whether to try again after failed attempt number ``attempt`` of the given kind."""
        return kind.retryable and attempt < self.max_attempts
