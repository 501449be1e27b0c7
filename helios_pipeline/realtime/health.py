"""Stream service counters, its health snapshot, and the snapshot's home in Redis.

Health is published every ``health_interval_s`` to the hash ``helios:{exchange}:stream_health``
(:func:`health_key`; ``...:stream_health-2of4`` for shard 2 of 4), which expires when the service
stops publishing: scalar fields as decimal text (``lag_ms``, ``messages``, ``valid``,
``quarantined``, ``shed``, ``reconnects``, ``last_message_at``, ...; empty text for "none"),
and JSON for the nested parts: ``writer`` (the durable writer's health), ``feeds`` (per
subscription: connected, reconnects, stalls, last error, recovery times) and ``symbols`` (per
unified symbol: last seen, lag, ticks, shed, quarantined, late trades).

Counting (at rest, once the queue is empty)::

    messages    = ticks + malformed
    ticks       = valid + rejected + shed + write_failed_ticks   (rejected: failed validation)
    quarantined = rejected + malformed

``lag_ms`` is now minus the newest exchange time seen on trades and tickers (book tops carry no
exchange time).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import redis
import redis.asyncio

from helios_pipeline.storage.quarantine import jsonable
from helios_pipeline.storage.ticks import Tick

log = logging.getLogger(__name__)


def health_key(exchange: str, shard_suffix: str = "") -> str:
    """Hash of the stream service's health: ``helios:binance:stream_health`` (``-1of2``...)."""
    return f"helios:{exchange.lower()}:stream_health{shard_suffix}"


# Health fields that add up over shards; lag_ms is their maximum.
SUMMED_FIELDS = ("messages", "ticks", "valid", "quarantined", "shed", "reconnects")


def read_health(client: redis.Redis, exchange: str) -> dict[str, str]:
    """The published health of ``exchange``'s stream service, shards combined.

    One service: its hash as text. Shards (``helios stream --shards``): each shard's fields
    prefixed ``{i}of{n}.``, plus ``shards``, the :data:`SUMMED_FIELDS` summed, ``lag_ms``
    the worst and ``status`` the shards' statuses (``running``, or ``running/stopped``...).
    Empty when nothing is published (or it expired: the service stopped).
    """
    base = health_key(exchange)
    keys = sorted(bytes(k).decode() for k in client.scan_iter(match=f"{base}*", count=100))
    hashes = {key: {bytes(k).decode(): bytes(v).decode()
                    for k, v in cast(dict[bytes, bytes], client.hgetall(key)).items()}
              for key in keys}
    hashes = {key: fields for key, fields in hashes.items() if fields}
    if list(hashes) in ([], [base]):
        return hashes.get(base, {})
    merged = {"shards": str(len(hashes))}
    for key, fields in hashes.items():
        label = key[len(base):].lstrip("-") or "main"
        merged.update({f"{label}.{name}": value for name, value in fields.items()})
    for name in SUMMED_FIELDS:
        merged[name] = str(sum(int(float(f.get(name) or 0)) for f in hashes.values()))
    lags = [int(float(f["lag_ms"])) for f in hashes.values() if f.get("lag_ms")]
    merged["lag_ms"] = str(max(lags)) if lags else ""
    merged["status"] = "/".join(sorted({f.get("status", "?") for f in hashes.values()}))
    return merged


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


def redis_fields(health: Mapping[str, object]) -> dict[str, str]:
    """The health snapshot as hash fields: scalars as text, nested values as JSON."""
    fields: dict[str, str] = {}
    for name, value in health.items():
        if value is None:
            fields[name] = ""
        elif isinstance(value, bool):
            fields[name] = "1" if value else "0"
        elif isinstance(value, int | float | str):
            fields[name] = str(value)
        else:
            fields[name] = json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"))
    return fields


class HealthPublisher:
    """Writes the health snapshot to Redis; an outage is logged once and counted, never raised.

    Args:
        redis_url: Hot-tier Redis.
        key: The health hash (:func:`health_key`).
        ttl_s: The hash expires this long after the last publish, so a stopped service (or an
            old shard layout) leaves no health that looks current.
    """

    def __init__(self, redis_url: str, key: str, ttl_s: float = 30.0) -> None:
        self.key = key
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.failures = 0
        self._down = False

    async def publish(self, health: Mapping[str, object]) -> bool:
        """Replace the published health; returns whether Redis took it."""
        fields = redis_fields(health)
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(self.key)
            pipe.hset(self.key, mapping=fields)  # type: ignore[arg-type]
            pipe.pexpire(self.key, self._ttl_ms)
            await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self.failures += 1
            if not self._down:
                log.warning("Publishing stream health to Redis failed (%r); retrying every "
                            "interval.", exc)
                self._down = True
            return False
        self._down = False
        return True

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()


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
