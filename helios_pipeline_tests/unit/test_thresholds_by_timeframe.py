"""Per-timeframe thresholds: resolution, HELIOS_VALIDATION overrides and refused values."""

from __future__ import annotations

import pytest

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.settings import Settings, SettingsError
from helios_pipeline.validation.rules import ThresholdError, ValidationThresholds


def test_defaults_per_timeframe() -> None:
    t = ValidationThresholds()
    jumps = {tf.value: t.value_for("max_jump", tf) for tf in Timeframe}
    assert jumps == {"1m": 0.2, "5m": 0.35, "15m": 0.4, "1h": 0.4, "4h": 0.45, "1d": 0.6}
    windows = {tf.value: t.for_timeframe(tf).average_window for tf in Timeframe}
    assert windows == {"1m": 59, "5m": 59, "15m": 59, "1h": 59, "4h": 41, "1d": 31}
    assert t.for_timeframe(Timeframe.M1) is t  # 1m (and ticks) use the plain fields


def test_helios_validation_overrides_one_timeframe_and_keeps_the_others() -> None:
    settings = Settings.from_env({"HELIOS_VALIDATION": "max_jump=0.25,max_jump@1h=0.5"})
    t = settings.validation
    assert t.value_for("max_jump", Timeframe.M1) == 0.25
    assert t.value_for("max_jump", Timeframe.H1) == 0.5
    assert t.value_for("max_jump", Timeframe.D1) == 0.6
    resolved = t.for_timeframe(Timeframe.H1)
    assert resolved.for_timeframe(Timeframe.H1) is resolved
    with pytest.raises(ThresholdError, match="resolved for 1h candles were used for 1d"):
        resolved.for_timeframe(Timeframe.D1)


@pytest.mark.parametrize(("spec", "message"), [
    ("max_jump@2h=0.5", "Unknown timeframe '2h'"),
    ("volume_z@1h=3", "only max_jump, average_window can be set per timeframe"),
    ("average_window@1d=30", "must be odd"),
    ("max_jump@1d=-1", "must be a finite number above 0"),
])
def test_bad_per_timeframe_values_are_refused_with_the_variable_named(spec: str,
                                                                      message: str) -> None:
    with pytest.raises(SettingsError, match=f"HELIOS_VALIDATION.*{message}"):
        Settings.from_env({"HELIOS_VALIDATION": spec})
