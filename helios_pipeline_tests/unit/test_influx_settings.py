"""HELIOS_INFLUX_URL / HELIOS_INFLUX_DATABASE: optional, off when empty, refused when not a URL."""

from __future__ import annotations

import pytest

from helios_pipeline.settings import Settings, SettingsError


def test_influx_mirror_is_off_unless_a_url_is_given() -> None:
    assert Settings.from_env({}).influx_url is None
    assert Settings.from_env({"HELIOS_INFLUX_URL": " "}).influx_url is None
    on = Settings.from_env({"HELIOS_INFLUX_URL": "http://u:secret@127.0.0.1:8086",
                            "HELIOS_INFLUX_DATABASE": "desk"})
    assert (on.influx_url, on.influx_database) == ("http://u:secret@127.0.0.1:8086", "desk")
    assert "secret" not in repr(on)


def test_influx_url_that_is_not_http_is_refused_with_the_variable_named() -> None:
    with pytest.raises(SettingsError, match=r"HELIOS_INFLUX_URL='127.0.0.1:8086'.*http"):
        Settings.from_env({"HELIOS_INFLUX_URL": "127.0.0.1:8086"})
