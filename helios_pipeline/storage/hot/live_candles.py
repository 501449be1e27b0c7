"""Live 1m candles in the Redis hot tier, where the batch side can reconcile them with ``ohlcv_1m``.

Key (one hash per symbol; ``keys.candle_key``)::

    helios:{exchange}:{STORAGE_ID}:candle_1m    field: open time, ms epoch (decimal text)
                                                value: JSON of ``LiveCandle.to_dict()``

A value holds the newest version of that minute's candle (``version``, ``amended``,
``complete``; prices and volume as exact decimal strings). Fields older than the retention are
deleted as new candles arrive, and the key expires one retention after its last write.
:class:`HotCandleWriter` keeps candles it could not write (Redis down) and writes them on the
next flush; :func:`load_live_candles` reads them back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any, cast

import redis
import redis.asyncio

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.storage.hot.client import async_client
from helios_pipeline.storage.hot.keys import candle_key
from helios_pipeline.storage.hot.outage import OutageLog

log = logging.getLogger(__name__)

def encode_candle(candle: LiveCandle) -> str:
    """The JSON stored for a candle (keys sorted, compact)."""
    return json.dumps(candle.to_dict(), sort_keys=True, separators=(",", ":"))


def decode_candle(raw: str | bytes) -> LiveCandle:
    """Inverse of :func:`encode_candle`.

    Raises:
        ValueError: ``raw`` is not a stored candle.
    """
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"Not a stored live candle: {raw!r}.")
    return LiveCandle.from_dict(data)


def load_live_candles(client: redis.Redis, exchange: str, symbol: str) -> list[LiveCandle]:
    """Every live candle of ``symbol`` in Redis, oldest first."""
    raw = cast(dict[bytes, bytes], client.hgetall(candle_key(exchange, symbol)))
    return sorted((decode_candle(v) for v in raw.values()), key=lambda c: c.open_ms)


class HotCandleWriter:
    """Writes live candles to Redis, keeping the ones it could not write for the next flush.

    Args:
        redis_url: Hot-tier Redis.
        exchange: ccxt exchange id (part of the key).
        retention_ms: How long candles are kept.
    """

    def __init__(self, redis_url: str, exchange: str, retention_ms: int) -> None:
        self.exchange = exchange
        self.retention_ms = retention_ms
        self._client: redis.asyncio.Redis = async_client(redis_url, timeout_s=2.0)
        self._pending: dict[tuple[str, int], LiveCandle] = {}
        self._fields: dict[str, set[int]] = {}
        self.written = 0
        self._outage = OutageLog(log)

    @property
    def failures(self) -> int:
        """Flushes that failed (Redis down, a timeout...)."""
        return self._outage.failures

    @property
    def pending(self) -> int:
        """Candles waiting to be written."""
        return len(self._pending)

    def add(self, candles: Iterable[LiveCandle]) -> None:
        """Queue candles for the next :meth:`flush` (a newer version replaces an older one)."""
        for candle in candles:
            self._pending[(candle.symbol, candle.open_ms)] = candle

    async def flush(self) -> int:
        """Write the pending candles; returns how many were written (0 if Redis failed)."""
        if not self._pending:
            return 0
        now_ms = time.time_ns() // 1_000_000
        cutoff = now_ms - self.retention_ms
        batch = {k: c for k, c in self._pending.items() if c.open_ms >= cutoff}
        pipe = self._client.pipeline(transaction=False)
        for (symbol, open_ms), candle in batch.items():
            key = candle_key(self.exchange, symbol)
            pipe.hset(key, str(open_ms), encode_candle(candle))
            pipe.pexpire(key, self.retention_ms)
            self._fields.setdefault(key, set()).add(open_ms)
        self._expire_fields(pipe, cutoff)
        if not await self._outage.execute(
                pipe, "Writing live candles to Redis failed (%r); keeping %d for later.",
                len(self._pending)):
            return 0
        for ident, candle in batch.items():
            if self._pending.get(ident) is candle:
                del self._pending[ident]
        for ident in [k for k, c in self._pending.items() if c.open_ms < cutoff]:
            del self._pending[ident]  # older than the hot tier keeps anything
        self.written += len(batch)
        return len(batch)

    def _expire_fields(self, pipe: Any, cutoff: int) -> None:
        for key, fields in self._fields.items():
            old = [f for f in fields if f < cutoff]
            if old:
                pipe.hdel(key, *map(str, old))
                fields.difference_update(old)

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()
