"""AdaptiveRateLimiter: weight windows, 429 blocks and 418 bans on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from helios_pipeline.exchanges.errors import ExchangeBannedError
from helios_pipeline.exchanges.ratelimit import AdaptiveRateLimiter


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make(
    start: float = 1_000_000.0, weight_limit: int = 6000, safety_fraction: float = 0.8
) -> tuple[AdaptiveRateLimiter, FakeTime]:
    """A limiter on a fake clock; 1_000_000 s lies in the window [999_960, 1_000_020)."""
    fake = FakeTime(start)
    limiter = AdaptiveRateLimiter(
        "binance", weight_limit, safety_fraction, clock=fake, sleep=fake.sleep
    )
    return limiter, fake


def test_default_budget_is_80_percent_of_6000() -> None:
    limiter, _ = make()
    assert limiter.weight_limit == 6000
    assert limiter.budget == 4800


def test_acquire_within_budget_does_not_wait_and_counts_weight() -> None:
    limiter, fake = make()
    asyncio.run(limiter.acquire(20))
    asyncio.run(limiter.acquire(2))
    assert fake.sleeps == []
    assert limiter.snapshot()["sent_since_observed"] == 22


def test_waits_until_next_minute_window_when_budget_would_be_exceeded() -> None:
    limiter, fake = make(start=1_000_000.5)
    limiter.observe(4790, int(fake.now * 1000))
    asyncio.run(limiter.acquire(20))
    assert fake.sleeps == [pytest.approx(19.5)]
    assert fake.now == pytest.approx(1_000_020.0)
    snap = limiter.snapshot()
    assert snap["observed_weight"] == 0
    assert snap["sent_since_observed"] == 20


def test_exactly_reaching_the_budget_is_allowed() -> None:
    limiter, fake = make(start=1_000_000.0)
    limiter.observe(4700, int(fake.now * 1000))
    asyncio.run(limiter.acquire(50))
    asyncio.run(limiter.acquire(50))
    assert fake.sleeps == []
    assert limiter.projected() == 4800
    asyncio.run(limiter.acquire(1))
    assert fake.sleeps == [pytest.approx(20.0)]


def test_requests_sent_since_the_header_count_towards_the_projection() -> None:
    limiter, fake = make(start=1_000_000.0, weight_limit=100, safety_fraction=1.0)
    limiter.observe(50, int(fake.now * 1000))
    for _ in range(25):
        asyncio.run(limiter.acquire(2))
    assert fake.sleeps == []
    asyncio.run(limiter.acquire(2))
    assert fake.sleeps == [pytest.approx(20.0)]


def test_observe_replaces_pending_weight_and_ignores_stale_windows() -> None:
    limiter, fake = make(start=1_000_000.0)
    asyncio.run(limiter.acquire(30))
    limiter.observe(31, int(fake.now * 1000))
    assert limiter.snapshot()["sent_since_observed"] == 0
    assert limiter.projected() == 31
    limiter.observe(4000, int((fake.now - 60) * 1000))  # previous window: stale
    assert limiter.projected() == 31


def test_new_window_forgets_the_old_usage() -> None:
    limiter, fake = make(start=1_000_000.0)
    limiter.observe(4800, int(fake.now * 1000))
    fake.now += 20.0  # 1_000_020 opens a new window
    assert limiter.projected() == 0
    asyncio.run(limiter.acquire(100))
    assert fake.sleeps == []


def test_block_for_makes_acquire_wait_exactly_retry_after() -> None:
    limiter, fake = make(start=1_000_000.0)
    limiter.block_for(1.5, "HTTP 429")
    assert limiter.blocked_until_ms == 1_000_001_500
    asyncio.run(limiter.acquire(1))
    assert fake.sleeps == [pytest.approx(1.5)]
    assert limiter.blocked_until_ms is None


def test_ban_raises_at_once_without_waiting() -> None:
    limiter, fake = make(start=1_000_000.0)
    limiter.ban_until(1_000_120_000, "HTTP 418 from /api/v3/klines")
    with pytest.raises(ExchangeBannedError, match=r"binance has banned this IP until .*120 s"):
        asyncio.run(limiter.acquire(1))
    assert fake.sleeps == []
    assert limiter.snapshot()["banned_until_ms"] == 1_000_120_000
    fake.now += 120.0
    asyncio.run(limiter.acquire(1))
    assert fake.sleeps == []


def test_a_shorter_block_or_ban_never_shortens_a_longer_one() -> None:
    limiter, _ = make(start=1_000_000.0)
    limiter.block_for(10, "first")
    limiter.block_for(1, "second")
    limiter.ban_until(1_000_300_000, "long")
    limiter.ban_until(1_000_010_000, "short")
    snap = limiter.snapshot()
    assert snap["blocked_until_ms"] == 1_000_010_000
    assert snap["block_reason"] == "first"
    assert snap["banned_until_ms"] == 1_000_300_000


def test_concurrent_acquires_share_the_budget() -> None:
    limiter, fake = make(start=1_000_000.0, weight_limit=10, safety_fraction=1.0)

    async def three() -> None:
        await asyncio.gather(limiter.acquire(4), limiter.acquire(4), limiter.acquire(4))

    asyncio.run(three())
    assert fake.sleeps == [pytest.approx(20.0)]
    assert limiter.projected() == 4


def test_configure_reads_the_minute_request_weight_limit() -> None:
    limiter, _ = make()
    rate_limits = [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ]
    assert limiter.configure(rate_limits) is True
    assert limiter.weight_limit == 1200
    assert limiter.budget == 960
    assert limiter.configure([{"rateLimitType": "RAW_REQUESTS", "limit": 5}]) is False
    assert limiter.weight_limit == 1200


def test_bad_settings_and_impossible_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="safety_fraction"):
        AdaptiveRateLimiter("binance", safety_fraction=0)
    with pytest.raises(ValueError, match="weight_limit"):
        AdaptiveRateLimiter("binance", weight_limit=0)
    limiter, _ = make(weight_limit=10, safety_fraction=0.5)
    with pytest.raises(ValueError, match="weight 6 can never fit"):
        asyncio.run(limiter.acquire(6))
