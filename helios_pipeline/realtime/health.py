"""Stream service counters and the one-line status ``helios stream`` prints.

The snapshot is published to Redis by ``storage.hot.health`` (key, fields, expiry).

Counting (at rest, once the queue is empty)::

    messages    = ticks + malformed
    ticks       = valid + rejected + shed + write_failed_ticks   (rejected: failed validation)
    quarantined = rejected + malformed

``lag_ms`` is now minus the newest exchange time seen on trades and tickers (book tops carry no
exchange time). ``soft_flagged`` counts kept ticks stored with soft flags (``Tick.flags``);
``divergence`` is ``None`` without a reference venue, else ``LiveDivergence.health()``
(``realtime.divergence_watch``: polls, failures, episodes, the symbols diverging now, alerts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from helios_pipeline.domain.ticks import Tick

log = logging.getLogger(__name__)


@dataclass
class SymbolStats:
    """Per-symbol counters (event-loop thread only).

    Attributes:
        ticks: Ticks received.
        malformed: Malformed frames attributed to the symbol.
        last_seen_ms: When its last tick arrived (wall ms).
        last_exchange_ts_ms: Newest exchange time of its trades and tickers.
    """

    ticks: int = 0
    malformed: int = 0
    last_seen_ms: int | None = None
    last_exchange_ts_ms: int | None = None


class StreamStats:
    """Counters the feeds update as ticks arrive (event-loop thread only)."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self.ticks = 0
        self.malformed = 0
        self.malformed_unattributed = 0
        self.last_message_ms: int | None = None
        self.last_exchange_ts_ms: int | None = None
        self.symbols = {s: SymbolStats() for s in symbols}

    def on_tick(self, tick: Tick) -> None:
        """Count a received tick."""
        self.ticks += 1
        now = tick.received_ts_us // 1000
        self.last_message_ms = now
        stats = self.symbols.get(tick.symbol)
        if stats is None:
            stats = self.symbols[tick.symbol] = SymbolStats()
        stats.ticks += 1
        stats.last_seen_ms = now
        if tick.kind != "book":
            ts = tick.exchange_ts_ms
            if stats.last_exchange_ts_ms is None or ts > stats.last_exchange_ts_ms:
                stats.last_exchange_ts_ms = ts
            if self.last_exchange_ts_ms is None or ts > self.last_exchange_ts_ms:
                self.last_exchange_ts_ms = ts

    def on_malformed(self, symbol: str | None, now_ms: int) -> None:
        """Count a malformed frame (attributed to ``symbol`` when known)."""
        self.malformed += 1
        self.last_message_ms = now_ms
        if symbol is None or symbol not in self.symbols:
            self.malformed_unattributed += 1
        else:
            self.symbols[symbol].malformed += 1

    @property
    def messages(self) -> int:
        """Everything the exchange delivered as data: ticks and malformed frames."""
        return self.ticks + self.malformed


def status_line(health: Mapping[str, object], ticks_per_s: float | None) -> str:
    """One human line: rate, lag, counters, queue and Redis state (``helios stream``)."""
    writer = health.get("writer")
    redis_up = writer.get("redis_up", True) if isinstance(writer, Mapping) else True
    pending = writer.get("pending", 0) if isinstance(writer, Mapping) else 0
    rate = "" if ticks_per_s is None else f"{ticks_per_s:,.0f} ticks/s | "
    lag = health.get("lag_ms")
    return (f"{health.get('status', '?')}: {rate}lag {'-' if lag is None else lag} ms | "
            f"ticks {health.get('ticks', 0)} valid {health.get('valid', 0)} "
            f"quarantined {health.get('quarantined', 0)} | shed {health.get('shed', 0)} | "
            f"reconnects {health.get('reconnects', 0)} | queue {health.get('queue_depth', 0)} | "
            f"redis {'up' if redis_up else 'DOWN'} ({pending} pending)")
