"""Ingest a range of days of one symbol at exchange speed: fetch once, then store day by day.

:func:`ingest_range` is what the ``ohlcv_1m`` asset runs for the partitions of a run (one day or
many) and what research code and benchmarks call for bulk loads:

1. every page of the range is fetched at once (``ExchangeClient.fetch_candles``: requests in
   flight up to the client's cap, Binance klines parsed in bulk into exact Arrow decimals);
2. each day is validated on its own (windows start afresh every day, so a day's content never
   depends on the range it was fetched with) by the vectorised frame engine; a day the frame
   engine finds a hard failure in, a day with misaligned times or rows that needed the exact
   parser, and every day of a CSV store go through the per-candle path of
   ``batch.ohlcv.ingest_ohlcv_day`` instead, which quarantines with the offending values;
3. the accepted candles of each day are stored, the quarantine file replaced, and 5m..1d
   derived in memory from the same table (``batch.aggregate``) and stored;
4. the catalog rows of the range are written in two transactions (1m, then derived).

Files and catalog rows are the same, byte for byte, as ``ingest_ohlcv_day`` followed by
``derive_day`` writes (``test_range_ingest.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.batch.confirm import confirm_outcome
from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, DerivedReport
from helios_pipeline.batch.lost_minutes import flag_table, quarantined_minutes
from helios_pipeline.batch.ohlcv import PartitionReport, check_day_closed, not_sent
from helios_pipeline.domain.aggregate import aggregate_table
from helios_pipeline.domain.columns import (
    ANOMALY_FLAGS,
    IS_VALIDATED,
    OHLCV_COLUMNS,
    TIMESTAMP,
    VALIDATION_SCORE,
)
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.resample import PARTIAL_BUCKET
from helios_pipeline.domain.schema import OHLCV_SCHEMA, VALIDATION_TYPES
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, datetime_to_ms, day_start_ms
from helios_pipeline.exchanges.candle_window import CandleBatch
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.storage.candle_codec import (
    table_columns,
    to_table,
)
from helios_pipeline.storage.candles import (
    CandleStore,
    StoredPartition,
    candle_columns,
    candles_of,
)
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.decisions import CandleDecision, DecisionStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.frames import (
    HARD_RULES_COLUMN,
    SOFT_RULES_COLUMN,
    validate_candle_frame,
)
from helios_pipeline.validation.outcome import ValidationOutcome, validate_candles
from helios_pipeline.validation.rules import ValidationThresholds
from helios_pipeline.validation.tables import candle_frame


@dataclass(frozen=True)
class Stores:
    """The stores of one data root a range is written to."""

    candles: CandleStore
    catalog: MetadataStore
    quarantine: QuarantineStore


@dataclass(frozen=True)
class MinuteDay:
    """One stored 1m partition and its candles.

    Attributes:
        report: Catalog row, quarantined and soft-flagged counts.
        table: The stored candles (:data:`~helios_pipeline.domain.schema.OHLCV_SCHEMA`).
    """

    report: PartitionReport
    table: pa.Table

    @property
    def day(self) -> date:
        """The partition's UTC day."""
        return self.report.day


@dataclass(frozen=True)
class DerivedDay:
    """One stored derived partition and its candles."""

    report: DerivedReport
    table: pa.Table


@dataclass(frozen=True)
class DayResult:
    """What :func:`ingest_range` stored for one symbol x day."""

    minute: MinuteDay
    derived: dict[Timeframe, DerivedDay]


@dataclass(frozen=True)
class _Day:
    """One day's validation outcome, before anything is written."""

    day: date
    accepted: pa.Table
    outcome: ValidationOutcome | None  # None: the fast path accepted every row


async def ingest_range(
    client: ExchangeClient,
    stores: Stores,
    symbol: str,
    days: Sequence[date],
    thresholds: ValidationThresholds | None = None,
    derive: Sequence[Timeframe] = DERIVED_TIMEFRAMES,
    reference: ExchangeClient | None = None,
) -> list[DayResult]:
    """:func:`ingest_minutes`, then :func:`derive_days` of every day."""
    minutes = await ingest_minutes(client, stores, symbol, days, thresholds, reference)
    derived = derive_days(client.exchange_id, client.qualifier, stores, symbol, minutes, derive)
    return [DayResult(minute, group) for minute, group in zip(minutes, derived, strict=True)]


async def ingest_minutes(
    client: ExchangeClient,
    stores: Stores,
    symbol: str,
    days: Sequence[date],
    thresholds: ValidationThresholds | None = None,
    reference: ExchangeClient | None = None,
) -> list[MinuteDay]:
    """Fetch, validate and store the 1m candles of ``days`` (one fetch for the whole range).

    Args:
        client: Open exchange client (its ``qualifier`` names the storage folder).
        stores: Where candles, catalog rows and quarantine records go.
        symbol: ccxt unified symbol.
        days: Closed UTC days, consecutive or not, in any order.
        thresholds: Validation thresholds (``Settings.validation``); defaults when omitted.
        reference: Open client of the reference venue: a candle refused only for a price rule
            is stored as ``confirmed_move`` when that venue shows the same move
            (``batch.confirm``); ``None`` keeps the rule as it is (quarantine).

    Returns:
        One stored partition per day, in day order.

    Raises:
        DayNotClosedError: A day has not closed yet (nothing is fetched).
        ExchangeError: The exchange failed or answered garbage (nothing is stored).
    """
    ordered = sorted(set(days))
    for day in ordered:
        check_day_closed(day)
    if not ordered:
        return []
    start, end = day_start_ms(ordered[0]), day_start_ms(ordered[-1]) + DAY_MS
    batch = await client.fetch_candles(symbol, Timeframe.M1, start, end)
    return await store_minutes(client, stores, symbol, ordered, batch, thresholds,
                               reference=reference)


async def store_minutes(
    client: ExchangeClient,
    stores: Stores,
    symbol: str,
    days: Sequence[date],
    batch: CandleBatch,
    thresholds: ValidationThresholds | None = None,
    sources: Mapping[date, str] | None = None,
    reference: ExchangeClient | None = None,
) -> list[MinuteDay]:
    """Validate and store the 1m candles of ``days`` from an already fetched ``batch``.

    What :func:`ingest_minutes` does after fetching; the bulk-archive path
    (``batch.bulk``) hands in candles from archive files and REST pages alike.

    Args:
        client: Open exchange client (days needing the exact path are fetched again from it).
        stores: Where candles, catalog rows and quarantine records go.
        symbol: ccxt unified symbol.
        days: Closed UTC days.
        batch: Candles covering ``days`` (others are ignored).
        thresholds: Validation thresholds; defaults when omitted.
        sources: The catalog's ``source`` per day (default: the client's, for every day).
        reference: Open client of the reference venue that confirms price-rule breaks
            (see :func:`ingest_minutes`).
    """
    ordered = sorted(set(days))
    now_ms = int(time.time() * 1000)
    fast = stores.candles.fmt == "parquet"
    validated: dict[date, _Day] = {}
    for day in ordered:
        accepted = _validate_fast(batch, day, thresholds, now_ms) if fast else None
        if accepted is not None:
            validated[day] = _Day(day, accepted, None)
    exact = [day for day in ordered if day not in validated]
    decisions: list[CandleDecision] = []
    for day, (outcome, found) in zip(exact, await asyncio.gather(
            *(_validate_exact(client, symbol, day, thresholds, now_ms, reference)
              for day in exact)), strict=True):
        decisions.extend(found)
        validated[day] = _Day(day, to_table(candle_columns(outcome.accepted), f"{symbol} {day}"),
                              outcome)
    minutes = _store_minutes(client, stores, symbol, [validated[day] for day in ordered],
                             sources or {})
    DecisionStore(stores.catalog.path).record(decisions)
    return minutes


def derive_days(
    exchange_id: str,
    qualifier: str | None,
    stores: Stores,
    symbol: str,
    minutes: Sequence[MinuteDay],
    timeframes: Sequence[Timeframe] = DERIVED_TIMEFRAMES,
) -> list[dict[Timeframe, DerivedDay]]:
    """Aggregate each stored 1m day into ``timeframes``, store and catalog them (one transaction).

    Args:
        exchange_id: The catalog's exchange.
        qualifier: Exchange qualifier of the storage folder (``None`` for the primary venue).
        stores: Where the files and catalog rows go.
        symbol: ccxt unified symbol.
        minutes: The 1m days to derive from (their catalog version names the source).
        timeframes: The longer timeframes.
    """
    groups = []
    writes = []
    for minute in minutes:
        group = []
        lost = quarantined_minutes(stores.quarantine, symbol, minute.day, qualifier)
        for tf in timeframes:
            table = flag_table(aggregate_table(minute.table, tf), tf, lost)
            stored = _store_table(stores.candles, symbol, tf, minute.day, table, qualifier)
            group.append((tf, table, stored))
            writes.append(PartitionWrite(exchange_id, symbol, tf, minute.day, stored,
                                         f"derived from ohlcv_1m v{minute.report.record.version}"))
        groups.append(group)
    records = iter(stores.catalog.record_partitions(writes))
    return [{tf: DerivedDay(DerivedReport(symbol, minute.day, tf, next(records), stored.changed,
                                          _count_flagged(table, PARTIAL_BUCKET)), table)
             for tf, table, stored in group}
            for minute, group in zip(minutes, groups, strict=True)]


async def _validate_exact(
    client: ExchangeClient, symbol: str, day: date, thresholds: ValidationThresholds | None,
    now_ms: int, reference: ExchangeClient | None = None,
) -> tuple[ValidationOutcome, list[CandleDecision]]:
    """The per-candle path of ``ingest_ohlcv_day`` for one day, then confirmation.

    The day is fetched again, parsed row by row: quarantine records keep every value as the
    exchange wrote it (``"43519.34000000"``), which the bulk columns no longer hold.
    """
    start = day_start_ms(day)
    candles = await client.fetch_ohlcv(symbol, Timeframe.M1, start, start + DAY_MS)
    outcome = validate_candles(candles, symbol, Timeframe.M1, thresholds, now_ms=now_ms,
                               source=client.source)
    if reference is None or not outcome.quarantined:
        return outcome, []
    confirmed = await confirm_outcome(reference, client.exchange_id, candles, outcome,
                                      thresholds)
    return confirmed.outcome, confirmed.decisions


def _validate_fast(
    batch: CandleBatch, day: date, thresholds: ValidationThresholds | None, now_ms: int
) -> pa.Table | None:
    """The day's candles with their validation outcome, or ``None`` for the exact path.

    ``None`` when a page of the day needed the exact parser, an open time is off the minute
    grid or a row breaks a hard rule: those rows are quarantined with their offending values by
    the per-candle path.
    """
    if any(_in_day(c, day) for c in batch.candles):
        return None
    rows = _day_rows(batch.table, day)
    times = rows.column(TIMESTAMP).cast(pa.int64())
    if rows.num_rows and pc.any(pc.not_equal(pc.modulo(times, Timeframe.M1.ms), 0)).as_py():
        return None
    verdicts = validate_candle_frame(candle_frame(rows), Timeframe.M1, thresholds, now_ms)
    if any(verdicts[HARD_RULES_COLUMN]):
        return None
    soft = [list(names) for names in verdicts[SOFT_RULES_COLUMN]]
    return pa.Table.from_arrays(
        [*rows.columns,
         pa.array([True] * rows.num_rows, VALIDATION_TYPES[IS_VALIDATED]),
         pa.array(verdicts[VALIDATION_SCORE].to_numpy(), VALIDATION_TYPES[VALIDATION_SCORE]),
         pa.array(soft, VALIDATION_TYPES[ANOMALY_FLAGS])],
        schema=OHLCV_SCHEMA)


def _store_minutes(
    client: ExchangeClient, stores: Stores, symbol: str, days: list[_Day],
    sources: Mapping[date, str],
) -> list[MinuteDay]:
    """Write every day's 1m file and quarantine file, then their catalog rows (one transaction)."""
    writes = [_store_minute(client, stores, symbol, item, sources.get(item.day, client.source))
              for item in days]
    records = stores.catalog.record_partitions(writes)
    return [
        MinuteDay(PartitionReport(
            symbol=symbol, day=item.day, record=record, changed=write.stored.changed,
            quarantined=len(item.outcome.quarantined) if item.outcome is not None else 0,
            soft_flagged=_count_flagged(item.accepted),
        ), item.accepted)
        for item, write, record in zip(days, writes, records, strict=True)
    ]


def _store_minute(client: ExchangeClient, stores: Stores, symbol: str, item: _Day,
                  source: str) -> PartitionWrite:
    """Store one day's accepted 1m candles and replace its quarantine file."""
    m1, qualifier = Timeframe.M1, client.qualifier
    stored = _store_table(stores.candles, symbol, m1, item.day, item.accepted, qualifier)
    quarantined = item.outcome.quarantined if item.outcome is not None else []
    stores.quarantine.store_partition(symbol, m1, item.day, quarantined, exchange=qualifier)
    if item.outcome is not None:  # a quarantined minute was sent: it is not missing
        stored = replace(stored, missing_ranges=not_sent(item.outcome, m1, item.day))
    return PartitionWrite(client.exchange_id, symbol, m1, item.day, stored, source,
                          len(quarantined))


def _store_table(store: CandleStore, symbol: str, timeframe: Timeframe, day: date,
                 table: pa.Table, exchange: str | None) -> StoredPartition:
    if store.fmt == "parquet":
        return store.store_table(symbol, timeframe, day, table, exchange)
    candles = candles_of(table_columns(table), symbol, timeframe)
    return store.store(symbol, timeframe, day, candles, exchange)


def _count_flagged(table: pa.Table, flag: str | None = None) -> int:
    """Rows carrying any anomaly flag, or ``flag`` when given."""
    flags = table.column(ANOMALY_FLAGS)
    if flag is None:
        return int(pc.sum(pc.greater(pc.list_value_length(flags), 0)).as_py() or 0)
    hits = pc.equal(pc.list_flatten(flags), flag)
    return len(set(pc.filter(pc.list_parent_indices(flags), hits).to_pylist()))


def _day_rows(table: pa.Table, day: date) -> pa.Table:
    start = day_start_ms(day)
    opens = table.column(TIMESTAMP).cast(pa.int64())
    inside = pc.and_(pc.greater_equal(opens, start), pc.less(opens, start + DAY_MS))
    return table.filter(inside).select(list(OHLCV_COLUMNS))


def _in_day(candle: OHLCVData, day: date) -> bool:
    start = day_start_ms(day)
    return start <= datetime_to_ms(candle.timestamp) < start + DAY_MS


