"""The latest live indicator values in the Redis hot tier, one hash per symbol and timeframe.

Key (``keys.indicator_key``)::

    helios:{exchange}:{STORAGE_ID}:indicators_{timeframe}
        open_ms   open time of the candle the values are at (ms epoch, decimal text)
        close     that candle's close
        rsi, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, atr, adx
                  the values as plain decimal text (``63.0417``, ``0.00001``; ``NaN`` in warm-up)

The text of a value parses back (``float``) to exactly the float the stream service computed.
Each write replaces the whole hash; the key expires one hot-tier retention after its last write,
so a stopped service leaves no stale values behind for long. :class:`HotIndicatorWriter` keeps
what it could not write (Redis down) for the next flush; :func:`load_live_indicators` reads a
hash back (:class:`LiveIndicatorValues`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import redis

from helios_pipeline.storage.hot.hash_writer import HashWriter
from helios_pipeline.storage.hot.keys import indicator_key

log = logging.getLogger(__name__)

OPEN_FIELD = "open_ms"


def value_text(value: float) -> str:
    """A float as plain decimal text that parses back to the same float (``NaN`` for NaN).

    Raises:
        ValueError: ``value`` is infinite (no indicator produces that).
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        raise ValueError(f"value={value!r}: an indicator value must be finite or NaN.")
    return format(Decimal(repr(float(value))), "f")


def encode_values(open_ms: int, values: Mapping[str, float]) -> dict[str, str]:
    """The hash fields of one candle's values (see the module docstring)."""
    fields = {name: value_text(value) for name, value in values.items()}
    fields[OPEN_FIELD] = str(open_ms)
    return fields


@dataclass(frozen=True, slots=True)
class LiveIndicatorValues:
    """The latest live indicator values of one symbol and timeframe.

    Attributes:
        open_ms: Open time of the candle they are at (ms epoch UTC).
        indicators: ``close`` and every indicator (NaN in its warm-up).
    """

    open_ms: int
    indicators: dict[str, float]


def decode_values(fields: Mapping[str, str]) -> LiveIndicatorValues:
    """Inverse of :func:`encode_values`.

    Raises:
        ValueError: ``fields`` is not a stored indicator hash.
    """
    try:
        open_ms = int(fields[OPEN_FIELD])
        values = {k: float(v) for k, v in fields.items() if k != OPEN_FIELD}
    except (KeyError, ValueError) as exc:
        raise ValueError(f"Not a stored live indicator hash ({exc!r}): {dict(fields)!r}.") from None
    return LiveIndicatorValues(open_ms, values)


def load_live_indicators(client: redis.Redis, exchange: str, symbol: str,
                         timeframe: str) -> LiveIndicatorValues | None:
    """The latest live ``timeframe`` indicators of ``symbol`` in Redis (``None``: none kept).

    Raises:
        ValueError: The hash holds something else than :func:`encode_values` wrote.
    """
    raw = cast(dict[bytes, bytes], client.hgetall(indicator_key(exchange, symbol, timeframe)))
    if not raw:
        return None
    return decode_values({k.decode(): v.decode() for k, v in raw.items()})


class HotIndicatorWriter:
    """Writes the latest indicator values to Redis; keeps the ones it could not write.

    Args:
        redis_url: Hot-tier Redis.
        exchange: ccxt exchange id (part of the key).
        retention_ms: The hashes expire this long after their last write.
    """

    def __init__(self, redis_url: str, exchange: str, retention_ms: int) -> None:
        self.exchange = exchange
        self.retention_ms = retention_ms
        self._hashes = HashWriter(redis_url, log, timeout_s=2.0, replace=True)
        self._pending: dict[tuple[str, str], dict[str, str]] = {}
        self.written = 0

    @property
    def failures(self) -> int:
        """Flushes that failed."""
        return self._hashes.failures

    @property
    def pending(self) -> int:
        """Hashes waiting to be written."""
        return len(self._pending)

    def add(self, symbol: str, timeframe: str, open_ms: int, values: Mapping[str, float]) -> None:
        """Queue one candle's values for the next :meth:`flush` (newer replaces older)."""
        self._pending[(symbol, timeframe)] = encode_values(open_ms, values)

    async def flush(self) -> int:
        """Write the pending hashes; returns how many were written (0 if Redis failed)."""
        if not self._pending:
            return 0
        batch = dict(self._pending)
        hashes = {indicator_key(self.exchange, symbol, timeframe): fields
                  for (symbol, timeframe), fields in batch.items()}
        warning = "Writing live indicators to Redis failed (%r); keeping %d for later."
        if not await self._hashes.write(hashes, self.retention_ms, warning, len(batch)):
            return 0
        for ident, fields in batch.items():
            if self._pending.get(ident) is fields:
                del self._pending[ident]
        self.written += len(batch)
        return len(batch)

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._hashes.aclose()
