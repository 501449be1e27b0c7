"""The catalog's record types and how they map to and from SQLite rows (``storage.metadata``).

Decimals are stored as their exact plain-notation text, never as REAL; times are UTC ISO-8601.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from helios_pipeline.domain.gaps import count_missing
from helios_pipeline.domain.models import Market
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.storage.candle_codec import decimal_text
from helios_pipeline.storage.candles import StoredPartition

MARKET_DECIMALS = ("tick_size", "lot_size", "min_qty", "max_qty", "min_notional")
MARKET_COLUMNS = ("exchange", "symbol", "exchange_symbol", "base", "quote", "active",
                  *MARKET_DECIMALS)


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """A stored config value and when it was last set.

    Attributes:
        key: Config key.
        value: The JSON value.
        updated_at: When it was last stored (UTC).
    """

    key: str
    value: Any
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    """One version of a stored partition in the catalog.

    Attributes:
        exchange: ccxt exchange id the data came from.
        symbol: ccxt unified symbol.
        timeframe: Candle length.
        day: UTC day of the partition.
        version: 1 for the first write; +1 each time the bytes changed.
        rows: Candles in the file.
        first_ts_ms: Open time of the first candle; ``None`` for an empty day.
        last_ts_ms: Open time of the last candle; ``None`` for an empty day.
        missing_minutes: Minutes of the day no candle covers (the missing-candle count for 1m).
        missing_ranges: Missing candle open times as ``(first_ms, last_ms)`` pairs, inclusive.
        content_hash: SHA-256 (hex) of the file bytes.
        written_at: When this version was first recorded (UTC).
        last_verified_at: Last time these exact bytes were written or re-materialised (UTC).
        source: Where the data came from (``binance@http://127.0.0.1:8081``, ``replay``).
        path: The partition file.
        quarantined: Rows the exchange sent that failed a hard rule (1m partitions; 0 for
            derived ones): ``rows + quarantined + missing_minutes`` is the day's 1,440 minutes.
    """

    exchange: str
    symbol: str
    timeframe: Timeframe
    day: date
    version: int
    rows: int
    first_ts_ms: int | None
    last_ts_ms: int | None
    missing_minutes: int
    missing_ranges: tuple[tuple[int, int], ...]
    content_hash: str
    written_at: datetime
    last_verified_at: datetime
    source: str
    path: Path
    quarantined: int = 0


@dataclass(frozen=True)
class PartitionWrite:
    """One stored partition to record in the catalog (see ``MetadataStore.record_partition``)."""

    exchange: str
    symbol: str
    timeframe: Timeframe
    day: date
    stored: StoredPartition
    source: str
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One verified month of the cold archive (``storage.archive``) in the catalog.

    Attributes:
        exchange: ccxt exchange id.
        symbol: ccxt unified symbol.
        timeframe: Candle length.
        month: First day of the month.
        rows: Candles in the month file.
        days: Days whose daily files it holds.
        content_hash: The month's content hash (``storage.archive.table_hash``).
        path: The month file (on its filesystem).
        archived_at: When it was last written and verified (UTC).
        daily_removed: Days whose daily files were removed after verification (all of them
            over the runs so far).
    """

    exchange: str
    symbol: str
    timeframe: Timeframe
    month: date
    rows: int
    days: tuple[date, ...]
    content_hash: str
    path: str
    archived_at: datetime
    daily_removed: tuple[date, ...] = ()


def market_values(market: Market) -> tuple[object, ...]:
    """A market as the values of ``MARKET_COLUMNS`` (decimals as exact text)."""
    decimals = (getattr(market, name) for name in MARKET_DECIMALS)
    return (
        market.exchange, market.symbol, market.exchange_symbol, market.base, market.quote,
        int(market.active), *(None if d is None else decimal_text(d) for d in decimals),
    )


def market_from_row(row: Sequence[Any]) -> Market:
    """A ``markets`` row (``MARKET_COLUMNS``) as a :class:`Market`."""
    values = dict(zip(MARKET_COLUMNS, row, strict=True))
    for name in MARKET_DECIMALS:
        text = values[name]
        values[name] = None if text is None else Decimal(text)
    values["active"] = bool(values["active"])
    return Market(**values)


def partition_values(timeframe: Timeframe, stored: StoredPartition) -> tuple[object, ...]:
    """The catalog columns a stored partition fills (rows, times, gaps, hash)."""
    ranges = [list(r) for r in stored.missing_ranges]
    missing_minutes = count_missing(stored.missing_ranges, timeframe.ms) * timeframe.ms // MINUTE_MS
    return (
        stored.rows, stored.first_ts_ms, stored.last_ts_ms, missing_minutes,
        json.dumps(ranges), stored.content_hash,
    )


def partition_from_row(row: Sequence[Any]) -> PartitionRecord:
    """A ``partitions`` row (every column, in table order) as a :class:`PartitionRecord`."""
    (exchange, symbol, timeframe, day, version, rows, first_ts, last_ts, missing_minutes,
     ranges, content_hash, written_at, verified_at, source, path, quarantined) = row
    return PartitionRecord(
        exchange=exchange, symbol=symbol, timeframe=Timeframe(timeframe),
        day=date.fromisoformat(day), version=version, rows=rows, first_ts_ms=first_ts,
        last_ts_ms=last_ts, missing_minutes=missing_minutes,
        missing_ranges=tuple((int(a), int(b)) for a, b in json.loads(ranges)),
        content_hash=content_hash, written_at=datetime.fromisoformat(written_at),
        last_verified_at=datetime.fromisoformat(verified_at), source=source, path=Path(path),
        quarantined=quarantined,
    )
