"""Writing Redis hashes that expire, for the hot tier's writers of current state.

:class:`HashWriter` is what the divergence writer, the live indicator writer and the health
publisher share: one MULTI/EXEC transaction of ``HSET`` (the fields) and ``PEXPIRE`` (the TTL)
per hash, ``DEL`` first where the hash is replaced as a whole, and a Redis outage that is
counted and logged once (then quiet until a write succeeds again) instead of raised. What to do
about a failed write (drop it, keep it for later) is the caller's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import redis
import redis.asyncio

from helios_pipeline.storage.hot.client import async_client
from helios_pipeline.storage.hot.outage import OutageLog


class HashWriter:
    """Writes Redis hashes in one transaction; an outage is logged once and counted, never raised.

    Args:
        redis_url: Hot-tier Redis.
        log: The caller's logger, for the outage warning.
        timeout_s: Connect timeout and socket timeout of the connection.
        replace: Delete each hash before writing its fields, so no field of an older write
            stays; otherwise the fields are set over the existing hash.
    """

    def __init__(self, redis_url: str, log: logging.Logger, *, timeout_s: float,
                 replace: bool) -> None:
        self._client: redis.asyncio.Redis = async_client(redis_url, timeout_s=timeout_s)
        self._outage = OutageLog(log)
        self._replace = replace

    @property
    def failures(self) -> int:
        """Writes that failed (Redis down, a timeout...)."""
        return self._outage.failures

    async def write(self, hashes: Mapping[str, Mapping[str, str]], ttl_ms: int,
                    warning: str, *args: object) -> bool:
        """Write ``hashes`` (key to fields), each expiring ``ttl_ms`` after; whether Redis did.

        Args:
            hashes: The fields of each hash, by key.
            ttl_ms: Each hash expires this long after this write.
            warning: Logged (``%``-style, the error first, then ``args``) when a write fails
                and the one before it did not: once per outage.
            args: The warning's other arguments.
        """
        pipe = self._client.pipeline(transaction=True)
        for key, fields in hashes.items():
            if self._replace:
                pipe.delete(key)
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.pexpire(key, ttl_ms)
        return await self._outage.execute(pipe, warning, *args)

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()
