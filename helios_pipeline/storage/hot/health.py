"""The stream service's health in the hot tier: published by the service, read by Dagster.

Health is published every ``health_interval_s`` to the hash ``helios:{exchange}:stream_health``
(:func:`~helios_pipeline.storage.hot.keys.health_key`; ``...:stream_health-2of4`` for shard 2 of
4), which expires when the service stops publishing: scalar fields as decimal text (``lag_ms``,
``messages``, ``valid``, ``quarantined``, ``shed``, ``reconnects``, ``last_message_at``, ...;
empty text for "none"), and JSON for the nested parts: ``writer`` (the durable writer's health),
``feeds`` (per subscription: connected, reconnects, stalls, last error, recovery times) and
``symbols`` (per unified symbol: last seen, lag, ticks, shed, quarantined, late trades). What
the counters mean is documented in ``realtime.health``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import cast

import redis

from helios_pipeline.domain.quarantine import jsonable
from helios_pipeline.storage.hot.hash_writer import HashWriter
from helios_pipeline.storage.hot.keys import health_key

log = logging.getLogger(__name__)

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
        self._hashes = HashWriter(redis_url, log, timeout_s=1.0, replace=True)

    @property
    def failures(self) -> int:
        """Publishes that failed."""
        return self._hashes.failures

    async def publish(self, health: Mapping[str, object]) -> bool:
        """Replace the published health; returns whether Redis took it."""
        return await self._hashes.write(
            {self.key: redis_fields(health)}, self._ttl_ms,
            "Publishing stream health to Redis failed (%r); retrying every interval.")

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._hashes.aclose()
