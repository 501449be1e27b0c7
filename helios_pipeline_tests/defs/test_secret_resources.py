"""Dagster gets credential-bearing config through ``dg.EnvVar``, never as a literal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.resources import SecretConfigError
from helios_pipeline.settings import Settings

REDIS = "redis://:resource-pw-1234@127.0.0.1:6379/0"
HOOK = "https://hooks.example.com/services/T000/B000/resourcehooktoken"


def test_secrets_from_the_environment_reach_dagster_as_env_vars(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIOS_REDIS_URL", REDIS)
    monkeypatch.setenv("HELIOS_ALERT_WEBHOOK_URL", HOOK)
    monkeypatch.setenv("HELIOS_MASTER_KEY", "x" * 43 + "=")
    monkeypatch.setenv("HELIOS_DATA_DIR", str(tmp_path))
    resources = build_defs(Settings.from_env()).resources
    for name, field in (("market_data", "redis_url"), ("realtime", "redis_url"),
                        ("alerts", "webhook_url"), ("exchange", "master_key")):
        value = getattr(resources[name], field)
        assert isinstance(value, dg.EnvVar), (name, field, value)
    assert resources["market_data"].redis_url == "HELIOS_REDIS_URL"  # the name, not the URL
    assert resources["alerts"].webhook_url == "HELIOS_ALERT_WEBHOOK_URL"


def test_a_credential_not_from_its_variable_is_refused(settings: Settings) -> None:
    with pytest.raises(SecretConfigError, match="set it in HELIOS_REDIS_URL") as caught:
        build_defs(replace(settings, redis_url=REDIS))
    assert "resource-pw-1234" not in str(caught.value)


def test_plain_values_stay_literal(settings: Settings) -> None:
    resources = build_defs(replace(settings, redis_url="redis://127.0.0.1:6390/3")).resources
    assert resources["market_data"].redis_url == "redis://127.0.0.1:6390/3"
    assert not isinstance(resources["market_data"].redis_url, dg.EnvVar)
