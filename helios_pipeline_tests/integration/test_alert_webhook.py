"""AlertManager against a real HTTP receiver on a free local port (aiohttp server in a thread)."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from helios_pipeline.quality.alerts import Alert, AlertManager, alerts_from_summary, redact_url
from helios_pipeline.quality.monitor import DataQualityMonitor, SymbolData
from helios_pipeline.settings import Settings
from helios_pipeline_tests.conftest import free_port
from helios_pipeline_tests.webhook_receiver import Receiver

SECRET = "s3cr3t-T0KEN"  # noqa: S105 - a fake token the test hunts for in the logs
AT = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
LOGGER = "helios.quality.alerts.test"


class FakeClock:
    """Monotonic seconds the test moves by hand (the dedup interval without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.DEBUG)  # everything, aiohttp's own loggers included
    return logging.getLogger(LOGGER)


def alert(rule: str = "gaps", symbol: str | None = "BTC/USDT", severity: str = "warning") -> Alert:
    return Alert(severity=severity, title=f"{symbol} {rule}",  # type: ignore[arg-type]
                 message="30 missing minutes", symbol=symbol, rule=rule, value=30.0, at=AT)


def manager(url: str | None, log: logging.Logger, **kw: Any) -> AlertManager:
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 2.0)
    return AlertManager(url, log, **kw)


def records_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record, message and attributes (extra fields too)."""
    return caplog.text + "".join(repr(vars(r)) for r in caplog.records)


def test_receiver_gets_json_payloads(log: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    with Receiver() as rx:
        alerts = manager(rx.url(), log)
        sent = asyncio.run(alerts.send_all([alert("gaps"), alert("outliers", "ETH/USDT",
                                                                 "critical")]))
    assert sent == 2
    assert [b["rule"] for b in rx.bodies] == ["gaps", "outliers"]
    first = rx.bodies[0]
    assert first == {
        "source": "helios", "severity": "warning", "title": "BTC/USDT gaps",
        "message": "30 missing minutes", "symbol": "BTC/USDT", "rule": "gaps", "value": 30.0,
        "at": "2024-01-02T12:00:00+00:00",
        "text": "[WARNING] BTC/USDT gaps: 30 missing minutes",
    }
    logged = [r for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(
        "quality alert {")]
    assert [r.levelno for r in logged] == [logging.WARNING, logging.CRITICAL]
    assert json.loads(logged[1].getMessage().removeprefix("quality alert "))["symbol"] == "ETH/USDT"


def test_retries_after_500_then_succeeds(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver(statuses=[500, 503]) as rx:
        assert asyncio.run(manager(rx.url(), log).send(alert())) is True
    assert len(rx.bodies) == 3  # 500, 503, then 200
    assert rx.bodies[0] == rx.bodies[2]
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.getMessage().split(" failed")[0] for r in retries] == [
        f"alert webhook {rx.url().removesuffix('/hook')} attempt 1/4",
        f"alert webhook {rx.url().removesuffix('/hook')} attempt 2/4",
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_timeout_is_retried(log: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    with Receiver(delays_s=[1.5]) as rx:
        assert asyncio.run(manager(rx.url(), log, timeout_s=0.3).send(alert())) is True
    assert len(rx.bodies) == 2
    assert any("timed out; retrying" in r.getMessage() for r in caplog.records)


def test_client_error_is_not_retried(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver(statuses=[404]) as rx:
        assert asyncio.run(manager(rx.url(), log).send(alert())) is True
    assert len(rx.bodies) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "after 1 attempt(s): HTTP 404 (rule=gaps symbol=BTC/USDT)" in errors[0]


def test_deduplicates_symbol_and_rule_within_interval(log: logging.Logger) -> None:
    clock = FakeClock()
    with Receiver() as rx:
        alerts = manager(rx.url(), log, min_interval_s=300, clock=clock)

        async def scenario() -> list[bool]:
            results = [await alerts.send(alert("gaps")), await alerts.send(alert("gaps"))]
            results.append(await alerts.send(alert("gaps", "ETH/USDT")))  # other symbol
            results.append(await alerts.send(alert("outliers")))  # other rule
            clock.now += 299
            results.append(await alerts.send(alert("gaps")))  # still inside the interval
            clock.now += 1
            results.append(await alerts.send(alert("gaps")))  # 300 s later: sent again
            return results

        results = asyncio.run(scenario())
    assert results == [True, False, True, True, False, True]
    assert [(b["symbol"], b["rule"]) for b in rx.bodies] == [
        ("BTC/USDT", "gaps"), ("ETH/USDT", "gaps"), ("BTC/USDT", "outliers"),
        ("BTC/USDT", "gaps")]


def test_unreachable_webhook_is_logged_not_raised(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    assert asyncio.run(manager(url, log, retries=2).send(alert())) is True
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "not delivered to webhook" in errors[0]
    assert "after 3 attempt(s): ClientConnectorError" in errors[0]
    # The alert itself was still logged.
    assert any(r.getMessage().startswith("quality alert {") for r in caplog.records)


def test_webhook_secrets_never_logged(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver(statuses=[500, 500, 500, 500, 500, 500, 400]) as rx:
        secret_url = rx.url(f"?token={SECRET}").replace("http://", f"http://user:{SECRET}X@")
        alerts = manager(secret_url, log, min_interval_s=0, retries=3)
        asyncio.run(alerts.send_all([alert("gaps"), alert("outliers"), alert("score")]))
        assert rx.queries[0] == f"token={SECRET}"  # the token did reach the receiver
    dead = f"http://user:{SECRET}X@127.0.0.1:{free_port()}/hook/{SECRET}?token={SECRET}"
    asyncio.run(manager(dead, log, retries=1).send(alert()))
    text = records_text(caplog)
    assert "not delivered" in text  # the failure paths did log
    assert SECRET not in text
    assert SECRET not in repr(manager(dead, log))
    assert redact_url(dead) == f"http://127.0.0.1:{dead.split(':')[3].split('/')[0]}"


def test_settings_read_webhook_url_and_hide_it() -> None:
    url = f"https://hooks.example.invalid/services/x?token={SECRET}"
    settings = Settings.from_env({"HELIOS_ALERT_WEBHOOK_URL": url})
    assert settings.alert_webhook_url == url
    assert SECRET not in repr(settings)
    assert Settings.from_env({}).alert_webhook_url is None


def test_bad_webhook_url_is_refused_without_echoing_it(log: logging.Logger) -> None:
    with pytest.raises(ValueError, match="HELIOS_ALERT_WEBHOOK_URL") as info:
        AlertManager(f"ftp://host/x?token={SECRET}", log)
    assert SECRET not in str(info.value)


def test_alerts_from_summary_end_to_end(log: logging.Logger) -> None:
    start = datetime(2024, 1, 2, tzinfo=UTC)
    index = pd.DatetimeIndex([start + timedelta(minutes=m) for m in range(1440) if m >= 60])
    frame = pd.DataFrame({"close": [100.0] * len(index)}, index=index)
    summary = DataQualityMonitor().assess(
        [SymbolData("BTC/USDT", frame, exchange="binance", quarantine={"price_spike": 2})],
        start, start + timedelta(days=1))
    found = alerts_from_summary(summary)
    assert [(a.severity, a.rule, a.value) for a in found] == [
        ("warning", "gaps", 60.0), ("warning", "quarantine.price_spike", 2.0)]
    assert found[0].symbol == "binance:BTC/USDT"
    assert found[0].at == summary.generated_at
    with Receiver() as rx:
        assert asyncio.run(manager(rx.url(), log).send_all(found)) == 2
        again = [replace(a, at=AT) for a in found]
    assert [b["rule"] for b in rx.bodies] == ["gaps", "quarantine.price_spike"]
    assert again[0].at == AT


def test_no_webhook_logs_only(log: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    assert asyncio.run(manager(None, log).send(alert(severity="info"))) is True
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.INFO]
    with pytest.raises(ValueError, match="severity 'loud'"):
        alert(severity="loud")
