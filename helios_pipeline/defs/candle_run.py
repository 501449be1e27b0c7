"""One run's work on the candle assets: ingest, check and derive, chunk by chunk.

Shared by the ``ohlcv_candles`` multi-asset (a run of one partition, or a UI backfill's range)
and ``ohlcv_backfill_job`` (``helios backfill``): the same events for each partition whichever
launched it. Per chunk of days of one symbol: store the 1m days -> schema check (blocking: a
failing day is not derived) -> expectations and gap checks -> derive -> the consistency check
against the exchange's own candles (one result per day for every derived timeframe).
"""

import asyncio
from collections.abc import Generator, Iterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import date

import dagster as dg
import pyarrow as pa

from helios_pipeline.batch.derived import (
    DERIVED_TIMEFRAMES,
    ConsistencyReport,
    DerivedReport,
    compare_range_with_exchange,
)
from helios_pipeline.batch.ingest import MinuteDay, Stores, derive_days, ingest_minutes
from helios_pipeline.batch.ohlcv import PartitionReport
from helios_pipeline.batch.partition_checks import (
    CheckOutcome,
    consistency_outcome,
    expectation_outcomes,
    gap_outcome,
    schema_outcomes,
)
from helios_pipeline.defs.bulk import ingest_from_archive
from helios_pipeline.defs.checks import (
    CONSISTENCY_CHECK,
    EXPECTATIONS_CHECK,
    GAP_CHECK,
    SCHEMA_CHECK,
    SEVERITY,
    evaluation,
)
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.quality.alerts import AlertManager
from helios_pipeline.storage.catalog_rows import PartitionRecord
from helios_pipeline.validation.rules import ValidationThresholds

# Days fetched and checked together (bounds memory; one Great Expectations run per chunk).
CHUNK_DAYS = 31
CandleEvent = (dg.AssetMaterialization | dg.MaterializeResult[None] | dg.AssetCheckEvaluation
               | dg.AssetCheckResult)


class CandleRun:
    """The work of one run on the candle assets: the partitions of one symbol, chunk by chunk.

    Args:
        log: The run's logger.
        exchange: The venue to fetch from.
        storage: The data root.
        thresholds: Validation thresholds.
        assets: The candle assets to materialise (``ohlcv_1m`` and derived ones).
        checks: The checks to evaluate.
        outputs: Report each asset as the step's output (a run of one partition, so that
            downstream assets of the same run can read it) instead of a materialisation event
            naming the partition (a run over a range).
        alerts: Where bulk-archive cross-check differences go (``None``: the run's log).
        reference: The reference venue that confirms candles breaking a price rule
            (``batch.confirm``); ``None``: no confirmation, such candles are quarantined.
    """

    def __init__(self, log: dg.DagsterLogManager, exchange: ExchangeResource,
                 storage: StorageResource, thresholds: ValidationThresholds,
                 assets: AbstractSet[dg.AssetKey], checks: AbstractSet[dg.AssetCheckKey],
                 outputs: bool = False, alerts: AlertManager | None = None,
                 reference: ExchangeResource | None = None) -> None:
        self.log, self.exchange, self.thresholds = log, exchange, thresholds
        self.alerts, self.reference = alerts, reference
        self.stores = Stores(storage.candles(), storage.metadata(), storage.quarantine())
        self.assets, self.checks, self.single = assets, checks, outputs
        self.derive = [tf for tf in DERIVED_TIMEFRAMES if candle_key(tf) in assets]

    def chunk(self, symbol: str, days: list[date]) -> Iterator[CandleEvent]:
        """Store, check and derive the days of one symbol; every event of each partition."""
        if OHLCV_1M in self.assets:
            self.log.info(f"Ingesting {symbol} {days[0]}..{days[-1]} from "
                                  f"{self.exchange.exchange_id}")
            minutes = asyncio.run(self._ingest(symbol, days))
            for minute in minutes:
                yield self._materialized(OHLCV_1M, symbol, minute.day,
                                         partition_metadata(minute.report))
        else:
            minutes = self._stored_minutes(symbol, days)
        passed = yield from self._minute_checks(symbol, minutes)
        derivable = [m for m in minutes if m.day in passed]
        if not self.derive or not derivable:
            return
        derived = derive_days(self.exchange.exchange_id, None, self.stores, symbol, derivable,
                              self.derive)
        for minute, group in zip(derivable, derived, strict=True):
            for tf, item in group.items():
                yield self._materialized(candle_key(tf), symbol, minute.day,
                                         derived_metadata(item.report))
        yield from self._consistency(symbol, {m.day: {tf: d.table for tf, d in g.items()}
                                              for m, g in zip(derivable, derived, strict=True)})

    async def _ingest(self, symbol: str, days: list[date]) -> list[MinuteDay]:
        async with self.exchange.client() as client:
            if self.reference is None:
                return await self._fetch(client, symbol, days, None)
            async with self.reference.client() as reference:
                return await self._fetch(client, symbol, days, reference)

    async def _fetch(self, client: ExchangeClient, symbol: str, days: list[date],
                     reference: ExchangeClient | None) -> list[MinuteDay]:
        if self.exchange.bulk_url:  # closed periods from the exchange's archive
            return await ingest_from_archive(self.log, client, self.exchange.bulk_url,
                                             self.stores, symbol, days, self.thresholds,
                                             self.alerts, reference)
        return await ingest_minutes(client, self.stores, symbol, days, self.thresholds,
                                    reference)

    def _stored_minutes(self, symbol: str, days: list[date]) -> list[MinuteDay]:
        """The stored 1m days (a run that derives without fetching)."""
        exchange_id = self.exchange.exchange_id
        out = []
        for day in days:
            record = self.stores.catalog.latest_partition(exchange_id, symbol, Timeframe.M1, day)
            if record is None:
                raise dg.Failure(f"{symbol} {day}: ohlcv_1m is not stored yet; materialise it "
                                 "before its derived timeframes.")
            report = PartitionReport(symbol, day, record, changed=False,
                                     quarantined=record.quarantined)
            out.append(MinuteDay(report, self.stores.candles.load_table(symbol, Timeframe.M1,
                                                                        day)))
        return out

    def _minute_checks(
        self, symbol: str, minutes: Sequence[MinuteDay]
    ) -> Generator[CandleEvent, None, set[date]]:
        """Yield the 1m checks; return the days the blocking schema check let through."""
        days = [m.day for m in minutes]
        passed = set(days)
        if SCHEMA_CHECK in self.checks:
            for day, outcome in schema_outcomes(self.stores.candles, symbol, days).items():
                yield self._evaluated(SCHEMA_CHECK, symbol, day, outcome, blocking=True)
                if not outcome.passed:
                    passed.discard(day)
        if EXPECTATIONS_CHECK in self.checks:
            outcomes = expectation_outcomes([(m.day, m.table) for m in minutes], self.thresholds)
            for day, outcome in outcomes.items():
                yield self._evaluated(EXPECTATIONS_CHECK, symbol, day, outcome)
        if GAP_CHECK in self.checks:
            for minute in minutes:
                yield self._evaluated(GAP_CHECK, symbol, minute.day,
                                      gap_outcome(minute.report.record))
        return passed

    def _consistency(self, symbol: str, derived: dict[date, dict[Timeframe, pa.Table]]
                     ) -> Iterator[CandleEvent]:
        if CONSISTENCY_CHECK not in self.checks:
            return

        async def compare() -> dict[tuple[date, Timeframe], ConsistencyReport]:
            async with self.exchange.client() as client:
                return await compare_range_with_exchange(client, symbol, derived, self.derive)

        by_day: dict[date, dict[Timeframe, ConsistencyReport]] = {}
        for (day, tf), report in asyncio.run(compare()).items():
            by_day.setdefault(day, {})[tf] = report
        for day, reports in by_day.items():
            yield self._evaluated(CONSISTENCY_CHECK, symbol, day, consistency_outcome(reports))

    def _materialized(self, key: dg.AssetKey, symbol: str, day: date,
                      metadata: dict[str, dg.MetadataValue]) -> CandleEvent:
        if self.single:  # an output: downstream assets of this run can read it
            return dg.MaterializeResult(asset_key=key, metadata=metadata)
        return dg.AssetMaterialization(asset_key=key, partition=SymbolDay(symbol, day).key,
                                       metadata=metadata)

    def _evaluated(self, key: dg.AssetCheckKey, symbol: str, day: date, outcome: CheckOutcome,
                   blocking: bool = False) -> CandleEvent:
        severity = SEVERITY.get(key, dg.AssetCheckSeverity.ERROR)
        if self.single:  # the check's output: Dagster attributes it to the run's partition
            return dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name,
                                       passed=outcome.passed, metadata=dict(outcome.metadata),
                                       severity=severity)
        return evaluation(key, SymbolDay(symbol, day).key, outcome, severity, blocking)


def _record_metadata(record: PartitionRecord, changed: bool) -> dict[str, dg.MetadataValue]:
    gaps = [
        f"{ms_to_datetime(first):%H:%M}-{ms_to_datetime(last):%H:%M}"
        for first, last in record.missing_ranges
    ]
    return {
        "rows": dg.MetadataValue.int(record.rows),
        "missing_minutes": dg.MetadataValue.int(record.missing_minutes),
        "missing_ranges": dg.MetadataValue.text(", ".join(gaps) or "none"),
        "path": dg.MetadataValue.path(str(record.path)),
        "content_hash": dg.MetadataValue.text(record.content_hash),
        "version": dg.MetadataValue.int(record.version),
        "rewritten": dg.MetadataValue.bool(changed),
        "source": dg.MetadataValue.text(record.source),
    }


def partition_metadata(report: PartitionReport) -> dict[str, dg.MetadataValue]:
    """Materialisation metadata of one ``ohlcv_1m`` partition."""
    return {
        **_record_metadata(report.record, report.changed),
        "quarantined": dg.MetadataValue.int(report.quarantined),
        "soft_flagged": dg.MetadataValue.int(report.soft_flagged),
    }


def derived_metadata(report: DerivedReport) -> dict[str, dg.MetadataValue]:
    """Materialisation metadata of one derived partition."""
    return {
        **_record_metadata(report.record, report.changed),
        "partial_buckets": dg.MetadataValue.int(report.partial_buckets),
    }
