"""Ingest one symbol x day of candles: fetch, validate, store, quarantine, catalog.

These functions are what the ``ohlcv_1m`` Dagster asset runs; research code and benchmarks call
them directly. Nothing here imports Dagster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from helios_pipeline.domain.gaps import missing_ranges
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, datetime_to_ms, day_start_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionRecord
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.outcome import ValidationOutcome, validate_candles
from helios_pipeline.validation.rules import ValidationThresholds

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
        record: The catalog row written for it: ``rows`` are the stored (accepted) candles;
            missing minutes and ranges are what the exchange did not send at all.
        changed: False when the stored bytes were already identical (idempotent re-run).
        quarantined: Rows the exchange sent that failed a hard rule and went to quarantine
            instead of the partition (``rows + missing + quarantined`` covers the day when every
            quarantined row had its own open time in it).
        soft_flagged: Stored candles that carry soft anomaly flags.
    """

    symbol: str
    day: date
    record: PartitionRecord
    changed: bool
    quarantined: int = 0
    soft_flagged: int = 0


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
    thresholds: ValidationThresholds | None = None,
    quarantine: QuarantineStore | None = None,
) -> PartitionReport:
    """Fetch every candle of ``symbol`` on ``day``, validate, store, quarantine and catalog.

    Candles that pass every hard rule are stored with their validation outcome; the others go
    to the day's quarantine partition with their reasons (replaced on each run, so re-running a
    day is idempotent). Missing candles are recorded in the catalog as missing ranges, computed
    from what the exchange sent (stored and quarantined): a quarantined minute is not missing.
    Nothing is filled in. If the exchange sends something that does not parse, the client raises
    and nothing is stored.

    Args:
        client: Open exchange client.
        store: Candle files.
        metadata: Catalog.
        symbol: ccxt unified symbol.
        day: A closed UTC day.
        timeframe: Candle length.
        thresholds: Validation thresholds (``Settings.validation``); defaults when omitted.
        quarantine: Quarantine files; under the candle store's data root when omitted.
    """
    check_day_closed(day)
    start = day_start_ms(day)
    candles = await client.fetch_ohlcv(symbol, timeframe, start, start + DAY_MS)
    outcome = validate_candles(candles, symbol, timeframe, thresholds,
                               now_ms=int(time.time() * 1000), source=client.source)
    stored = store.store(symbol, timeframe, day, outcome.accepted, exchange=client.qualifier)
    (quarantine or QuarantineStore(store.data_dir)).store_partition(
        symbol, timeframe, day, outcome.quarantined, exchange=client.qualifier
    )
    stored = replace(stored, missing_ranges=not_sent(outcome, timeframe, day))
    record = metadata.record_partition(
        client.exchange_id, symbol, timeframe, day, stored, source=client.source,
        quarantined=len(outcome.quarantined),
    )
    return PartitionReport(symbol=symbol, day=day, record=record, changed=stored.changed,
                           quarantined=len(outcome.quarantined),
                           soft_flagged=outcome.soft_flagged)


def not_sent(
    outcome: ValidationOutcome, timeframe: Timeframe, day: date
) -> tuple[tuple[int, int], ...]:
    """Missing ranges of the day counting every aligned open time the exchange sent.

    A quarantined candle was sent: its minute is quarantined, not missing.
    """
    sent = [datetime_to_ms(c.timestamp) for c in outcome.accepted]
    sent += [r.timestamp_ms for r in outcome.quarantined
             if r.timestamp_ms is not None and r.timestamp_ms % timeframe.ms == 0]
    start = day_start_ms(day)
    return tuple(missing_ranges(sent, start, start + DAY_MS, timeframe.ms))


async def ingest_ohlcv_partitions(
    client: ExchangeClient,
    store: CandleStore,
    metadata: MetadataStore,
    partitions: Sequence[tuple[str, date]],
    on_done: Callable[[PartitionReport], None] | None = None,
    thresholds: ValidationThresholds | None = None,
) -> list[PartitionReport]:
    """Ingest many ``(symbol, day)`` partitions concurrently; results in input order.

    Args:
        client: Open exchange client (bounds requests in flight and honours rate limits).
        store: Candle files.
        metadata: Catalog.
        partitions: ``(unified symbol, day)`` pairs.
        on_done: Called as each partition finishes (progress bars, logging).
        thresholds: Validation thresholds (``Settings.validation``); defaults when omitted.
    """
    gate = asyncio.Semaphore(PARALLEL_PARTITIONS)

    async def one(symbol: str, day: date) -> PartitionReport:
        async with gate:
            report = await ingest_ohlcv_day(client, store, metadata, symbol, day,
                                            thresholds=thresholds)
        if on_done is not None:
            on_done(report)
        return report

    return list(await asyncio.gather(*(one(s, d) for s, d in partitions)))

