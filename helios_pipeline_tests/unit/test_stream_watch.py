from datetime import UTC, datetime, timedelta

from helios_pipeline.quality.stream_watch import StreamThresholds, WatchState, watch

T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)
LIMITS = StreamThresholds(max_lag_ms=5_000, max_shed=10)


def run(healths: list[dict[str, str]]) -> list[list[str]]:
    """Feed health readings through the watcher tick by tick, as the sensor does via its cursor."""
    state, out = WatchState(), []
    for i, health in enumerate(healths):
        alerts, state = watch(health, WatchState.from_cursor(state.to_cursor()), LIMITS,
                              "binance", T0 + timedelta(seconds=30 * i))
        out.append([f"{a.severity}:{a.rule}" for a in alerts])
    return out


def ok(lag: int = 100, shed: int = 0) -> dict[str, str]:
    return {"status": "running", "lag_ms": str(lag), "shed": str(shed)}


def test_a_platform_that_never_streamed_raises_nothing() -> None:
    assert run([{}, {}, {}]) == [[], [], []]


def test_down_is_one_alert_per_episode_and_one_on_recovery() -> None:
    assert run([ok(), {}, {}, {}, ok(), {}]) == [
        [], ["critical:stream.down"], [], [], ["info:stream.down.recovered"],
        ["critical:stream.down"]]


def test_lag_over_the_threshold_alerts_once_until_it_is_back_under() -> None:
    assert run([ok(lag=4_000), ok(lag=9_000), ok(lag=12_000), ok(lag=200)]) == [
        [], ["warning:stream.lagging"], [], ["info:stream.lagging.recovered"]]


def test_shedding_counts_new_sheds_only_and_a_restart_resets_the_counter() -> None:
    # cumulative counter: +5 (under 10), +50 (shedding), +0 (over), restart at 3 (not shedding)
    assert run([ok(shed=5), ok(shed=55), ok(shed=55), ok(shed=3)]) == [
        [], ["warning:stream.shedding"], ["info:stream.shedding.recovered"], []]


def test_an_unreadable_cursor_starts_afresh() -> None:
    assert WatchState.from_cursor("{not json") == WatchState()
    assert WatchState.from_cursor(None) == WatchState()
