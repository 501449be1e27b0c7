"""Ingest one symbol x day of candles: fetch through the exchange client, store, catalog.

These functions are what the ``ohlcv_1m`` Dagster asset runs; research code and benchmarks call
them directly. Nothing here imports Dagster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, day_start_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore, PartitionRecord

# Partitions ingested at the same time within one run; the client bounds requests in flight.
PARALLEL_PARTITIONS = 8


class DayNotClosedError(ValueError):
    """A partition was requested for a UTC day that has not ended yet."""


@dataclass(frozen=True)
class PartitionReport:
    """What ingesting one symbol x day did.

    Attributes:
        symbol: ccxt unified symbol.
        day: UTC day of the partition.
        record: The catalog row written for it (rows, missing minutes, hash, version, path).
        changed: False when the stored bytes were already identical (idempotent re-run).
    """

    symbol: str
    day: date
    record: PartitionRecord
    changed: bool


def check_day_closed(day: date, now: datetime | None = None) -> None:
    """Refuse partitions whose day is still running: its last candles are not final yet.

    Raises:
        DayNotClosedError: ``day`` is today or later (UTC).
    """
    today = (now or datetime.now(tz=UTC)).date()
    if day >= today:
        raise DayNotClosedError(
            f"Day {day} has not closed yet (today is {today} UTC): its candles are still "
            f"changing. Ingest days up to {today - timedelta(days=1)}."
        )


async def ingest_ohlcv_day(
    client: ExchangeClient,
    store: CandleStore,
    metadata: MetadataStore,
    symbol: str,
    day: date,
    timeframe: Timeframe = Timeframe.M1,
) -> PartitionReport:
    """Fetch every candle of ``symbol`` on ``day``, store the partition and catalog it.

    Missing candles are recorded in the catalog as missing ranges; nothing is filled in. If the
    exchange sends something that does not parse, the client raises and nothing is stored.
    """
    check_day_closed(day)
    start = day_start_ms(day)
    candles = await client.fetch_ohlcv(symbol, timeframe, start, start + DAY_MS)
    stored = store.store(symbol, timeframe, day, candles, exchange=client.qualifier)
    record = metadata.record_partition(
        client.exchange_id, symbol, timeframe, day, stored, source=client.source
    )
    return PartitionReport(symbol=symbol, day=day, record=record, changed=stored.changed)


async def ingest_ohlcv_partitions(
    client: ExchangeClient,
    store: CandleStore,
    metadata: MetadataStore,
    partitions: Sequence[tuple[str, date]],
    on_done: Callable[[PartitionReport], None] | None = None,
) -> list[PartitionReport]:
    """Ingest many ``(symbol, day)`` partitions concurrently; results in input order.

    Args:
        client: Open exchange client (bounds requests in flight and honours rate limits).
        store: Candle files.
        metadata: Catalog.
        partitions: ``(unified symbol, day)`` pairs.
        on_done: Called as each partition finishes (progress bars, logging).
    """
    gate = asyncio.Semaphore(PARALLEL_PARTITIONS)

    async def one(symbol: str, day: date) -> PartitionReport:
        async with gate:
            report = await ingest_ohlcv_day(client, store, metadata, symbol, day)
        if on_done is not None:
            on_done(report)
        return report

    return list(await asyncio.gather(*(one(s, d) for s, d in partitions)))

