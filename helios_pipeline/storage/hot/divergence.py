"""The current cross-exchange divergence of each streamed symbol, one Redis hash per symbol.

Key (``keys.divergence_key``)::

    helios:{exchange}:{STORAGE_ID}:divergence
        state            ``diverging`` (an episode is open) or ``agreeing``
        reference        the reference venue (``okx``)
        price            the primary venue's latest price (exact decimal text)
        reference_price  the reference venue's latest price (exact decimal text)
        divergence       ``|a - b| / min(a, b)`` of the two (``validation.rules.divergence``)
        threshold        ``max_divergence`` it is judged against (0.05)
        price_ts_ms      exchange time of ``price`` (ms epoch)
        reference_ts_ms  exchange time of ``reference_price``
        since_ms         when the current state began (the episode's start, or its end)
        updated_ms       when the stream service last compared the two

The stream service (``realtime.divergence_watch``) rewrites the hash after every comparison; it
expires ``ttl_ms`` after the last one, so a stopped service or a silent venue leaves no state
behind: no hash means "not known now". :func:`load_divergence` reads one back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, cast

import redis

from helios_pipeline.storage.hot.hash_writer import HashWriter
from helios_pipeline.storage.hot.keys import divergence_key

log = logging.getLogger(__name__)

DivergenceStatus = Literal["diverging", "agreeing"]
STATES: tuple[DivergenceStatus, ...] = ("diverging", "agreeing")


@dataclass(frozen=True, slots=True)
class DivergenceState:
    """One symbol's latest comparison with the reference venue (fields as in the module doc)."""

    symbol: str
    state: DivergenceStatus
    reference: str
    price: Decimal
    reference_price: Decimal
    divergence: float
    threshold: float
    price_ts_ms: int
    reference_ts_ms: int
    since_ms: int
    updated_ms: int

    @property
    def diverging(self) -> bool:
        """Whether a divergence episode is open."""
        return self.state == "diverging"


def encode_state(state: DivergenceState) -> dict[str, str]:
    """The hash fields of ``state`` (``symbol`` is in the key, not a field)."""
    return {"state": state.state, "reference": state.reference, "price": str(state.price),
            "reference_price": str(state.reference_price),
            "divergence": repr(state.divergence), "threshold": repr(state.threshold),
            "price_ts_ms": str(state.price_ts_ms), "reference_ts_ms": str(state.reference_ts_ms),
            "since_ms": str(state.since_ms), "updated_ms": str(state.updated_ms)}


def decode_state(symbol: str, fields: Mapping[str, str]) -> DivergenceState:
    """Inverse of :func:`encode_state`.

    Raises:
        ValueError: ``fields`` is not a stored divergence hash.
    """
    try:
        state = fields["state"]
        if state not in STATES:
            raise ValueError(f"state {state!r} is not one of {STATES}")
        return DivergenceState(
            symbol, state, fields["reference"], Decimal(fields["price"]),
            Decimal(fields["reference_price"]), float(fields["divergence"]),
            float(fields["threshold"]), int(fields["price_ts_ms"]),
            int(fields["reference_ts_ms"]), int(fields["since_ms"]), int(fields["updated_ms"]))
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"Not a stored divergence hash of {symbol} ({exc!r}): "
                         f"{dict(fields)!r}.") from None


def load_divergence(client: redis.Redis, exchange: str, symbol: str) -> DivergenceState | None:
    """The current divergence state of ``symbol`` on ``exchange`` (``None``: none known now).

    Raises:
        ValueError: The hash holds something else than :func:`encode_state` wrote.
    """
    raw = cast(dict[bytes, bytes], client.hgetall(divergence_key(exchange, symbol)))
    if not raw:
        return None
    return decode_state(symbol, {k.decode(): v.decode() for k, v in raw.items()})


class HotDivergenceWriter:
    """Writes divergence states to Redis; a failed write is logged and replaced by the next.

    Args:
        redis_url: Hot-tier Redis.
        exchange: The primary venue (part of the key).
        ttl_ms: Each hash expires this long after its last write.
    """

    def __init__(self, redis_url: str, exchange: str, ttl_ms: int) -> None:
        self.exchange = exchange
        self.ttl_ms = ttl_ms
        self._hashes = HashWriter(redis_url, log, timeout_s=2.0, replace=False)
        self.written = 0

    @property
    def failures(self) -> int:
        """Writes that failed."""
        return self._hashes.failures

    async def write(self, states: Iterable[DivergenceState]) -> bool:
        """Replace the hashes of ``states`` (one transaction); ``False`` if Redis failed."""
        batch = list(states)
        if not batch:
            return True
        hashes = {divergence_key(self.exchange, state.symbol): encode_state(state)
                  for state in batch}
        warning = ("Writing the divergence state to Redis failed (%r); the next comparison "
                   "writes it again.")
        if not await self._hashes.write(hashes, self.ttl_ms, warning):
            return False
        self.written += len(batch)
        return True

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._hashes.aclose()
