"""The one place that opens Redis connections for the hot tier.

Every connection has bounded socket timeouts, so an unreachable Redis is noticed in seconds
instead of hanging a writer, a publisher or a Dagster sensor.
"""

from __future__ import annotations

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def sync_client(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """A blocking client for ``url`` (``redis://host:port/db``).

    It retries a failed command once, quickly: the durable writer has its own backoff and must
    notice an outage rather than have it hidden by long retries.
    """
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
    )


def async_client(
    url: str, timeout_s: float = 2.0, *, blocking_reads: bool = False
) -> redis.asyncio.Redis:
    """An asyncio client for ``url``.

    Args:
        url: ``redis://host:port/db``.
        timeout_s: Connect timeout, and socket timeout of every call.
        blocking_reads: No socket timeout, for ``XREAD BLOCK`` (it waits server-side; the caller
            bounds the whole call).
    """
    return redis.asyncio.Redis.from_url(
        url, socket_timeout=None if blocking_reads else timeout_s,
        socket_connect_timeout=timeout_s,
    )
