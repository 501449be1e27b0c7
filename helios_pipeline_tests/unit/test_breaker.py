"""CircuitBreaker: exact trip counts, windows and half-open trials on a fake clock."""

from __future__ import annotations

import pytest

from helios_pipeline.exchanges.breaker import CircuitBreaker, CircuitState
from helios_pipeline.exchanges.errors import CircuitOpenError

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 5) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker("binance", failure_threshold=threshold, clock=clock), clock


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_opens_after_exactly_n_consecutive_failures() -> None:
    breaker, _ = make()
    fail(breaker, 4)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 4
    fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    snap = breaker.snapshot()
    assert snap["opened_at"] == T0
    assert snap["retry_at"] == T0 + 30
    assert snap["trips"] == 1


def test_open_circuit_fails_fast_and_says_who_since_when_and_until_when() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    clock.now += 10
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    message = str(info.value)
    assert "binance circuit is open since 2023-11-14T22:13:20Z" in message
    assert "after 5 consecutive failure(s)" in message
    assert "2023-11-14T22:13:50Z (in 20.0 s)" in message
    assert info.value.retry_at_s == T0 + 30


def test_half_opens_at_exactly_30_s_and_lets_one_trial_through() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    clock.now = T0 + 29.999
    assert breaker.state is CircuitState.OPEN
    clock.now = T0 + 30
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpenError, match="trial call is in progress"):
        breaker.before_call()


def test_successful_trial_closes_and_resets() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    clock.now = T0 + 30
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot() == {
        "exchange": "binance", "state": "closed", "consecutive_failures": 0,
        "opened_at": None, "retry_at": None, "trips": 0, "total_trips": 1,
    }
    breaker.before_call()  # calls flow again


def test_failed_trial_reopens_for_the_long_window_until_a_success() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    clock.now = T0 + 30
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot()["retry_at"] == T0 + 30 + 300
    assert breaker.snapshot()["trips"] == 2
    clock.now = T0 + 30 + 299.9
    assert breaker.state is CircuitState.OPEN
    clock.now = T0 + 330
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()
    breaker.record_failure()  # a repeated trip: long window again
    assert breaker.snapshot()["retry_at"] == T0 + 330 + 300
    clock.now = T0 + 630
    breaker.before_call()
    breaker.record_success()
    # after a success the next trip uses the short window again
    fail(breaker, 5)
    assert breaker.snapshot()["retry_at"] == T0 + 630 + 30
    assert breaker.snapshot()["trips"] == 1
    assert breaker.snapshot()["total_trips"] == 4


def test_success_between_failures_resets_the_count() -> None:
    breaker, _ = make(threshold=3)
    fail(breaker, 2)
    breaker.before_call()
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN


def test_ignored_outcome_frees_the_trial_slot_without_closing() -> None:
    breaker, clock = make()
    fail(breaker, 5)
    clock.now = T0 + 30
    breaker.before_call()
    breaker.record_ignored()
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # another trial may go
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_ignored_outcomes_do_not_count_as_failures() -> None:
    breaker, _ = make(threshold=2)
    for _ in range(10):
        breaker.before_call()
        breaker.record_ignored()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 0


def test_windows_are_configurable() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("kraken", 1, recovery_s=0.5, long_recovery_s=2.0, clock=clock)
    fail(breaker, 1)
    clock.now += 0.5
    breaker.before_call()
    breaker.record_failure()
    assert breaker.snapshot()["retry_at"] == clock.now + 2.0


@pytest.mark.parametrize(
    ("threshold", "recovery", "long_recovery"), [(0, 30.0, 300.0), (5, 0.0, 300.0), (5, 30.0, -1.0)]
)
def test_bad_settings_are_refused(threshold: int, recovery: float, long_recovery: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        CircuitBreaker("binance", threshold, recovery, long_recovery)
