"""Quality alerts: structured log lines and, when configured, JSON posts to a webhook.

:class:`AlertManager` logs every alert it is given and posts it to the webhook
(``Settings.alert_webhook_url``, env ``HELIOS_ALERT_WEBHOOK_URL``) with a timeout and retries
with exponential backoff. Delivery problems are logged, never raised: an alert must not break the
pipeline that raised it. The same ``(symbol, rule)`` is sent at most once per ``min_interval_s``.

Webhook URLs carry secrets (tokens in the query string, credentials, or the path itself as with
Slack and Discord hooks), so only the URL's origin (``scheme://host:port``) is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

import aiohttp

from helios_pipeline.quality.monitor import QualitySummary, Status
from helios_pipeline.security.redact import redact

Severity = Literal["info", "warning", "critical"]

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_LOG_LEVELS: dict[Severity, int] = {
    "info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL,
}
_SEVERITY_OF: dict[Status, Severity] = {"ok": "info", "warn": "warning", "fail": "critical"}
_RETRYABLE_STATUS = 500  # 5xx and 429 are retried; other 4xx mean the request itself is wrong


@dataclass(frozen=True)
class Alert:
    """One thing a person should know about.

    Attributes:
        severity: ``info``, ``warning`` or ``critical``.
        title: One line, e.g. ``binance:BTC/USDT gaps``.
        message: What happened, with the numbers.
        symbol: Symbol (or ``exchange:symbol``) it concerns; ``None`` for platform-wide alerts.
        rule: Stable rule name (``gaps``, ``quarantine.price_spike``); alerts deduplicate on
            ``(symbol, rule)``.
        value: The number that tripped the rule, if any.
        at: When it was raised (tz-aware).
    """

    severity: Severity
    title: str
    message: str
    symbol: str | None
    rule: str
    value: float | None
    at: datetime

    def __post_init__(self) -> None:
        """Reject an unknown severity or a naive time."""
        if self.severity not in SEVERITIES:
            raise ValueError(f"Alert severity {self.severity!r}: use one of {SEVERITIES}.")
        if self.at.tzinfo is None:
            raise ValueError(f"Alert time {self.at.isoformat()} is naive: give a UTC datetime.")

    def payload(self) -> dict[str, str | float | None]:
        """The JSON body posted to the webhook (``text`` suits Slack-style hooks)."""
        title, message = redact(self.title), redact(self.message)
        return {
            "source": "helios", "severity": self.severity, "title": title,
            "message": message, "symbol": self.symbol, "rule": self.rule,
            "value": self.value, "at": self.at.astimezone(UTC).isoformat(),
            "text": f"[{self.severity.upper()}] {title}: {message}",
        }


def redact_url(url: str) -> str:
    """The origin of ``url`` (``scheme://host:port``): no credentials, path, query or fragment."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable url>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


class AlertManager:
    """Logs alerts and posts them to a webhook, deduplicating per ``(symbol, rule)``."""

    def __init__(
        self,
        webhook_url: str | None,
        log: logging.Logger,
        min_interval_s: float = 300.0,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a manager.

        Args:
            webhook_url: ``http(s)`` URL to post JSON to; ``None`` or empty logs only.
            log: Where every alert and every delivery problem is logged.
            min_interval_s: The same ``(symbol, rule)`` is sent at most once per this many
                seconds; repeats inside the interval are dropped (logged at DEBUG).
            timeout_s: Total time for one post attempt.
            retries: Further attempts after a failed first one (connection error, timeout,
                HTTP 5xx or 429).
            backoff_s: Wait before the first retry; doubles before each further one.
            clock: Monotonic seconds, for tests.

        Raises:
            ValueError: ``webhook_url`` is not an http(s) URL, or a number is negative.
        """
        url = webhook_url or None
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"Alert webhook URL {redact_url(url)!r} is not http(s): set "
                             "HELIOS_ALERT_WEBHOOK_URL to an http:// or https:// URL.")
        if min(min_interval_s, timeout_s, retries, backoff_s) < 0:
            raise ValueError("min_interval_s, timeout_s, retries and backoff_s must be >= 0.")
        self._url = url
        self._log = log
        self._min_interval_s = min_interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retries = retries
        self._backoff_s = backoff_s
        self._clock = clock
        self._last_sent: dict[tuple[str | None, str], float] = {}

    def __repr__(self) -> str:
        """Show the webhook's origin only."""
        where = redact_url(self._url) if self._url else None
        return f"AlertManager(webhook={where!r}, min_interval_s={self._min_interval_s})"

    async def send(self, alert: Alert) -> bool:
        """Log and post one alert.

        Returns:
            ``False`` when it was dropped as a repeat within ``min_interval_s``, else ``True``
            (whether or not the webhook accepted it; failures are logged).
        """
        return await self.send_all([alert]) == 1

    async def send_all(self, alerts: Iterable[Alert]) -> int:
        """Log and post alerts in order over one HTTP session.

        Returns:
            How many were sent (not dropped as repeats).
        """
        sent = 0
        async with self._session() as session:
            for alert in alerts:
                if self._is_repeat(alert):
                    continue
                self._log_alert(alert)
                if session is not None and self._url is not None:
                    await self._deliver(session, self._url, alert)
                sent += 1
        return sent

    def _is_repeat(self, alert: Alert) -> bool:
        key = (alert.symbol, alert.rule)
        now = self._clock()
        last = self._last_sent.get(key)
        if last is not None and now - last < self._min_interval_s:
            self._log.debug("quality alert suppressed as a repeat within %.0f s: symbol=%s rule=%s",
                            self._min_interval_s, alert.symbol, alert.rule)
            return True
        self._last_sent[key] = now
        return False

    def _log_alert(self, alert: Alert) -> None:
        record = alert.payload()
        record.pop("text")
        self._log.log(_LOG_LEVELS[alert.severity], "quality alert %s",
                      json.dumps(record, sort_keys=True), extra={"alert": record})

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[aiohttp.ClientSession | None]:
        if self._url is None:
            yield None
            return
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            yield session

    async def _deliver(self, session: aiohttp.ClientSession, url: str, alert: Alert) -> bool:
        """Post with retries; every failure is logged and swallowed."""
        origin = redact_url(url)
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            problem, retryable = await self._post_once(session, url, alert)
            if problem is None:
                return True
            if not retryable or attempt == attempts:
                self._log.error("quality alert not delivered to webhook %s after %d attempt(s): "
                                "%s (rule=%s symbol=%s)", origin, attempt, problem, alert.rule,
                                alert.symbol)
                return False
            delay = self._backoff_s * 2 ** (attempt - 1)
            self._log.warning("alert webhook %s attempt %d/%d failed: %s; retrying in %.2f s",
                              origin, attempt, attempts, problem, delay)
            await asyncio.sleep(delay)
        return False

    @staticmethod
    async def _post_once(
        session: aiohttp.ClientSession, url: str, alert: Alert
    ) -> tuple[str | None, bool]:
        """One attempt: ``(None, _)`` on success, else a URL-free description and retryability."""
        try:
            async with session.post(url, json=alert.payload()) as response:
                if response.status < 300:
                    return None, False
                retry = response.status >= _RETRYABLE_STATUS or response.status == 429
                return f"HTTP {response.status}", retry
        except TimeoutError:
            return "timed out", True
        except aiohttp.ClientError as exc:
            # str(exc) may quote the full URL (with its token): report the type only.
            return type(exc).__name__, True
        except OSError as exc:
            return f"{type(exc).__name__} {exc.strerror or ''}".strip(), True
        except ValueError as exc:  # e.g. a payload value json cannot encode
            return type(exc).__name__, False


def alerts_from_summary(summary: QualitySummary, at: datetime | None = None) -> list[Alert]:
    """One alert per finding of every symbol (``warn`` -> warning, ``fail`` -> critical).

    Args:
        summary: The monitor's result.
        at: Time stamped on the alerts; the summary's ``generated_at`` when ``None``.
    """
    moment = at or summary.generated_at
    return [
        Alert(severity=_SEVERITY_OF[finding.level], title=f"{quality.key} {finding.rule}",
              message=finding.message, symbol=quality.key, rule=finding.rule,
              value=float(finding.value), at=moment)
        for quality in summary.symbols
        for finding in quality.findings
    ]
