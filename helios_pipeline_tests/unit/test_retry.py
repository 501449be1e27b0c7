"""RetryPolicy backoff and the classification of exchange failures."""

from __future__ import annotations

import random

import ccxt
import pytest

from helios_pipeline.exchanges.errors import ExchangeBannedError, ExchangeDataError
from helios_pipeline.exchanges.retry import FailureKind, RetryPolicy, classify


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (ccxt.NetworkError("reset"), None, FailureKind.TRANSIENT),
        (ccxt.RequestTimeout("slow"), None, FailureKind.TRANSIENT),
        (ccxt.ExchangeNotAvailable("502"), 502, FailureKind.TRANSIENT),
        (ccxt.ExchangeError("-1000 unknown"), 500, FailureKind.TRANSIENT),
        (TimeoutError(), None, FailureKind.TRANSIENT),
        (ConnectionResetError(), None, FailureKind.TRANSIENT),
        (ccxt.RateLimitExceeded("429"), 429, FailureKind.RATE_LIMITED),
        (ccxt.DDoSProtection("429"), 429, FailureKind.RATE_LIMITED),
        (ccxt.DDoSProtection("418"), 418, FailureKind.BANNED),
        (ExchangeBannedError("binance", 10.0, "418", 0.0), None, FailureKind.BANNED),
        (ccxt.BadSymbol("Invalid symbol."), 400, FailureKind.USER_ERROR),
        (ccxt.BadRequest("bad param"), 400, FailureKind.USER_ERROR),
        (ccxt.ExchangeNotAvailable("400 with no code"), 400, FailureKind.USER_ERROR),
        (ccxt.ExchangeNotAvailable("404"), 404, FailureKind.USER_ERROR),
        (ExchangeDataError("truncated", "klines"), 200, FailureKind.MALFORMED),
        (ccxt.BadResponse("not json"), 200, FailureKind.MALFORMED),
        (ccxt.AuthenticationError("key"), None, FailureKind.FATAL),
        (KeyError("bug"), None, FailureKind.FATAL),
    ],
)
def test_classification(error: BaseException, status: int | None, kind: FailureKind) -> None:
    assert classify(error, status) is kind


def test_which_kinds_retry_and_which_count_against_the_breaker() -> None:
    retry = {k for k in FailureKind if k.retryable}
    breaker = {k for k in FailureKind if k.counts_against_breaker}
    assert retry == {FailureKind.TRANSIENT, FailureKind.MALFORMED, FailureKind.RATE_LIMITED}
    assert breaker == {FailureKind.TRANSIENT, FailureKind.MALFORMED}


def test_envelope_doubles_from_the_base_and_stops_at_the_cap() -> None:
    policy = RetryPolicy()
    assert [policy.envelope(n) for n in range(1, 10)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0
    ]
    assert policy.envelope(10_000) == 30.0


def test_full_jitter_is_uniform_under_the_envelope_and_reproducible() -> None:
    policy = RetryPolicy(rng=random.Random(7))
    reference = random.Random(7)
    expected = [reference.uniform(0.0, env) for env in (0.5, 1.0, 2.0, 4.0)]
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == expected


def test_delays_stay_within_the_cap_and_grow_with_the_attempt() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30.0, rng=random.Random(1))
    samples = {n: [policy.delay(n) for _ in range(400)] for n in range(1, 10)}
    for n, delays in samples.items():
        assert all(0.0 <= d <= policy.envelope(n) <= 30.0 for d in delays)
    means = [sum(samples[n]) / 400 for n in range(1, 8)]
    assert means == sorted(means)
    assert max(samples[9]) > 20.0  # the cap is reached, not just approached by the envelope


def test_should_retry_stops_at_max_attempts_and_never_retries_bans_or_user_errors() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(FailureKind.TRANSIENT, 1)
    assert policy.should_retry(FailureKind.MALFORMED, 2)
    assert not policy.should_retry(FailureKind.TRANSIENT, 3)
    assert not policy.should_retry(FailureKind.BANNED, 1)
    assert not policy.should_retry(FailureKind.USER_ERROR, 1)
    assert not policy.should_retry(FailureKind.FATAL, 1)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 attempt"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay_s <= max_delay_s"):
        RetryPolicy(base_delay_s=5.0, max_delay_s=1.0)
