"""The live divergence watch: fresh pairs only, the validation rule, one alert per episode."""

from __future__ import annotations

from decimal import Decimal

import pytest

from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.divergence_watch import RULE, DivergenceWatch, start_divergence_watch
from helios_pipeline.settings import Settings
from helios_pipeline.storage.hot.divergence import decode_state, encode_state
from helios_pipeline.validation.rules import ValidationThresholds

T0 = 1_715_000_000_000
SYMBOL = "BTC/USDT"


def make_watch(**thresholds: float) -> DivergenceWatch:
    return DivergenceWatch("binance", "okx", [SYMBOL, "ETH/USDT"],
                           ValidationThresholds(**thresholds),  # type: ignore[arg-type]
                           recovery_ms=5_000)


def step(watch: DivergenceWatch, at_ms: int, ours: str, theirs: str) -> list[str]:
    """Both venues quote at ``at_ms``; the rules of the alerts the comparison raised."""
    watch.observe(SYMBOL, at_ms, Decimal(ours))
    watch.on_reference(SYMBOL, at_ms, Decimal(theirs))
    alerts, _ = watch.evaluate(at_ms)
    return [a.rule for a in alerts]


def test_one_alert_when_an_episode_starts_and_one_when_it_ends() -> None:
    watch = make_watch()
    rules = [step(watch, T0 + i * 1000, "100", theirs) for i, theirs in enumerate(
        ["100.1", "99.9",                       # agreeing: nothing
         "107", "108", "107.5", "104.9", "107",  # episode: one alert; 4.9 % for 1 s ends nothing
         "100", "100", "100", "100", "100",      # agreeing 4 s: still the episode
         "100", "100"])]                         # agreeing 5 s: it ends, once
    assert [r for rs in rules for r in rs] == [RULE, f"{RULE}.recovered"]
    assert rules[2] == [RULE]
    assert rules[12] == [f"{RULE}.recovered"]
    assert (watch.opened, watch.closed) == (1, 1)
    assert step(watch, T0 + 20_000, "100", "94") == [RULE]  # a new episode, either direction


def test_the_alerts_say_what_diverged_by_how_much() -> None:
    watch = make_watch()
    step(watch, T0, "100", "100")
    watch.observe(SYMBOL, T0 + 1000, Decimal("100"))
    watch.on_reference(SYMBOL, T0 + 1000, Decimal("107"))
    (start,), (state, *_) = watch.evaluate(T0 + 1000)
    assert (start.severity, start.symbol, start.value) == ("warning", "binance:BTC/USDT",
                                                           pytest.approx(0.07))
    assert start.title == "binance:BTC/USDT diverges from okx"
    assert "binance 100 vs okx 107: 7.00% apart, above the 5.00% threshold" in start.message
    assert (state.state, state.price, state.reference_price, state.since_ms) == (
        "diverging", Decimal("100"), Decimal("107"), T0 + 1000)
    assert decode_state(SYMBOL, encode_state(state)) == state
    for i in range(2, 8):
        step(watch, T0 + i * 1000, "100", "100.5")
    alerts, (state, *_) = watch.evaluate(T0 + 7000)
    assert alerts == []  # the recovery alert was sent once, at 7 s
    assert (state.state, state.since_ms) == ("agreeing", T0 + 2000)


def test_stale_pairs_are_neither_compared_nor_given_to_the_validator() -> None:
    watch = make_watch()
    watch.observe(SYMBOL, T0, Decimal("100"))
    watch.on_reference(SYMBOL, T0 + 5_001, Decimal("200"))  # 5 s + 1 ms apart: not fresh
    assert watch.evaluate(T0 + 5_001) == ([], [])
    assert watch.reference_price(SYMBOL, T0) is None
    assert watch.reference_price(SYMBOL, T0 + 1) == Decimal("200")  # 5 s apart: fresh
    assert watch.reference_price("ETH/USDT", T0) is None  # never quoted


def test_the_threshold_is_the_validation_one() -> None:
    watch = make_watch(max_divergence=0.10)
    assert step(watch, T0, "100", "107") == []
    assert step(watch, T0 + 1000, "100", "111") == [RULE]
    _, (state, *_) = watch.evaluate(T0 + 1000)
    assert state.threshold == 0.10


def test_the_stream_watches_the_reference_venue_the_settings_name() -> None:
    settings = Settings.from_env({"HELIOS_REFERENCE_EXCHANGE": "okx",
                                  "HELIOS_REFERENCE_EXCHANGE_URL": "http://127.0.0.1:9",
                                  "HELIOS_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook?t=SECRET"})
    config = StreamConfig.from_settings(settings, ["BTC/USDT"])
    assert config.reference is not None
    assert (config.reference.exchange_id, config.reference.base_url) == (
        "okx", "http://127.0.0.1:9")
    assert config.alert_webhook_url == "http://127.0.0.1:9/hook?t=SECRET"
    assert "SECRET" not in repr(config)
    assert start_divergence_watch(StreamConfig.from_settings(Settings.from_env({}),
                                                             ["BTC/USDT"])) is None
    with pytest.raises(ValueError, match="reference_poll_s=0"):
        StreamConfig(symbols=("BTC/USDT",), reference_poll_s=0)
