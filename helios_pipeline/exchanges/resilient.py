"""The resilient call: every request to an exchange behind its breaker, rate limiter and cap.

A call goes: circuit-breaker check -> rate limiter (weight) -> in-flight semaphore -> the request.
Failures are classified by :mod:`helios_pipeline.exchanges.retry`, retried within the policy
(exponential backoff with jitter; a 429 waits exactly its ``Retry-After``) and reported to the
breaker. :meth:`ResilientCaller.on_response` sees the status and headers of *every* HTTP
response (``ccxt_adapter`` hooks it into ccxt) and feeds the limiter: ``X-MBX-USED-WEIGHT-1M``,
429 ``Retry-After``, 418 bans. The status is recorded for the call that made the request
through a context variable, so concurrent calls never mix their responses up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from helios_pipeline.domain.logs import API_PERFORMANCE_LOGGER
from helios_pipeline.exchanges import ccxt_adapter as adapter
from helios_pipeline.exchanges.breaker import CircuitBreaker
from helios_pipeline.exchanges.errors import (
    CircuitOpenError,
    ExchangeBannedError,
    ExchangeDataError,
    ExchangeError,
    ExchangeRequestError,
    ExchangeUnavailableError,
    excerpt,
)
from helios_pipeline.exchanges.ratelimit import AdaptiveRateLimiter, Clock, Sleep
from helios_pipeline.exchanges.retry import FailureKind, RetryPolicy, classify
from helios_pipeline.exchanges.shared import InFlightCap

T = TypeVar("T")
API_LOG = logging.getLogger(API_PERFORMANCE_LOGGER)

DEFAULT_BAN_S = 120.0  # Binance's shortest ban, used when a 418 carries no Retry-After.


class ResilientCaller:
    """Runs requests to one exchange behind its breaker, limiter and in-flight cap, with retries.

    Args:
        exchange_id: ccxt exchange id, for error messages.
        base_url: The address requests go to (``None``: the exchange's own), for error messages.
        cap: The cap on requests in flight (shared across clients of one exchange or not).
        retry: Retry policy.
        breaker: The exchange's circuit breaker.
        limiter: The exchange's rate limiter.
        clock: Wall-clock seconds since the epoch.
        sleep: Coroutine used for retry backoff waits.
        weight_share: Share of the exchange's per-minute weight this caller's requests may take
            the IP's window to (``AdaptiveRateLimiter.acquire``); ``None``: the whole budget.
    """

    def __init__(
        self, exchange_id: str, base_url: str | None, cap: InFlightCap, retry: RetryPolicy,
        breaker: CircuitBreaker, limiter: AdaptiveRateLimiter, clock: Clock, sleep: Sleep,
        weight_share: float | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.weight_share = weight_share
        self.base_url = base_url
        self.breaker = breaker
        self.limiter = limiter
        self._retry = retry
        self._clock = clock
        self._sleep = sleep
        self._cap = cap
        self.requests_sent = 0
        self.retries = 0
        self.failures = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    async def call(self, endpoint: str, weight: int, request: Callable[[], Awaitable[T]]) -> T:
        """Run ``request`` behind breaker, limiter and semaphore, retrying per the policy.

        When the circuit opens while this call is retrying, the call ends with the error of its
        own last attempt (the cause a person needs to see), chained to the open circuit.
        """
        attempt = 0
        last: tuple[FailureKind, BaseException] | None = None
        while True:
            attempt += 1
            try:
                self.breaker.before_call()
            except CircuitOpenError as open_error:
                if last is None:
                    raise
                note = "; retries stopped because the circuit breaker opened"
                raise self._final_error(*last, endpoint, attempt - 1, note) from open_error
            record = adapter.ResponseRecord()
            began = time.perf_counter()
            try:
                result = await self._attempt(weight, request, record)
            except Exception as exc:
                self._log_attempt(endpoint, weight, record, began)
                kind, error = self._judge(exc, record, endpoint)
                if not self._retry.should_retry(kind, attempt):
                    final = self._final_error(kind, error, endpoint, attempt)
                    if final is exc:
                        raise
                    raise final from exc
                last = (kind, error)
                self.retries += 1
                await self._wait_before_retry(kind, attempt)
                continue
            except BaseException:
                self.breaker.record_ignored()  # cancelled: says nothing about the exchange
                raise
            self.breaker.record_success()
            self._log_attempt(endpoint, weight, record, began)
            return result

    def _log_attempt(self, endpoint: str, weight: int, record: adapter.ResponseRecord,
                     began: float) -> None:
        """One line per attempt for ``system/api_performance`` (when a file is attached)."""
        if API_LOG.isEnabledFor(logging.INFO):
            elapsed_ms = round((time.perf_counter() - began) * 1000, 2)
            API_LOG.info("%s %s %s", self.exchange_id, endpoint, record.status, extra={"api": {
                "exchange": self.exchange_id, "endpoint": endpoint, "status": record.status,
                "ms": elapsed_ms, "weight": weight,
                "used_weight": record.headers.get("x-mbx-used-weight-1m")}})

    async def _attempt(
        self, weight: int, request: Callable[[], Awaitable[T]], record: adapter.ResponseRecord
    ) -> T:
        await self.limiter.acquire(weight, self.weight_share)
        async with self._cap:
            token = adapter.CURRENT_RESPONSE.set(record)
            self.requests_sent += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await request()
            finally:
                self.in_flight -= 1
                adapter.CURRENT_RESPONSE.reset(token)

    def _judge(
        self, exc: Exception, record: adapter.ResponseRecord, endpoint: str
    ) -> tuple[FailureKind, BaseException]:
        """Classify a failed attempt, report it to the breaker and count it."""
        self.failures += 1
        error: BaseException = exc
        ok_status = record.status is not None and 200 <= record.status < 300
        if ok_status and not (adapter.is_ccxt_error(exc) or isinstance(exc, ExchangeError)):
            # ccxt choked on a 2xx body it could not interpret: the payload is malformed.
            error = ExchangeDataError(
                f"ccxt could not read the response ({type(exc).__name__}: {exc})",
                f"{self.exchange_id} {endpoint} ({record.url})", record.body,
            )
        kind = classify(error, record.status)
        if kind.counts_against_breaker:
            self.breaker.record_failure()
        else:
            self.breaker.record_ignored()
        return kind, error

    async def _wait_before_retry(self, kind: FailureKind, attempt: int) -> None:
        # A 429 with Retry-After blocked the limiter: acquire() waits exactly that long.
        if kind is FailureKind.RATE_LIMITED and self.limiter.blocked_until_ms is not None:
            return
        await self._sleep(self._retry.delay(attempt))

    def _final_error(
        self, kind: FailureKind, error: BaseException, endpoint: str, attempts: int, note: str = ""
    ) -> BaseException:
        if kind is FailureKind.BANNED:
            return self._ban_error(error)
        if kind is FailureKind.MALFORMED and isinstance(error, ExchangeDataError):
            if attempts == 1 and not note:
                return error
            return ExchangeDataError(f"{error.problem} (after {attempts} attempt(s){note})",
                                     error.source, error.payload_excerpt)
        if kind in (FailureKind.TRANSIENT, FailureKind.RATE_LIMITED, FailureKind.MALFORMED):
            return ExchangeUnavailableError(self.exchange_id, endpoint, attempts, error,
                                            self.base_url, note)
        if kind is FailureKind.USER_ERROR:
            return ExchangeRequestError(self.exchange_id, endpoint, str(error))
        return error

    def _ban_error(self, error: BaseException) -> ExchangeBannedError:
        if isinstance(error, ExchangeBannedError):
            return error
        try:
            self.limiter.check_ban()
        except ExchangeBannedError as ban:
            return ban
        now = self._clock()
        return ExchangeBannedError(self.exchange_id, now, str(error), now)

    def on_response(self, status: int, url: str, headers: Mapping[str, str]) -> None:
        """Feed the limiter from one HTTP response (any call, any task)."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        now_ms = int(self._clock() * 1000)
        used = lowered.get("x-mbx-used-weight-1m")
        if used is not None and used.strip().isdigit():
            self.limiter.observe(int(used), now_ms)
        retry_after = _seconds(lowered.get("retry-after"))
        if status == 429 and retry_after is not None:
            self.limiter.block_for(retry_after, f"HTTP 429 from {url}")
        elif status == 418:
            wait = DEFAULT_BAN_S if retry_after is None else retry_after
            self.limiter.ban_until(now_ms + int(wait * 1000), f"HTTP 418 from {excerpt(url)}")


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds, or None when absent or not a number."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
