"""Asset checks on the candle assets: gaps, freshness and derived-vs-exchange consistency.

The partitioned checks are evaluated by the candle multi-asset itself, right after it stores the
partitions (a separate check step would be skipped: the asset records per-partition
materialisations instead of an output). Dagster attributes a check result to a partition only in
single-partition runs, so for ranged (backfill) runs each partition's result is also reported to
the instance as its own evaluation: the UI shows check status per partition either way, and the
run's own result summarises the range.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from helios_pipeline.batch.derived import (
    DERIVED_TIMEFRAMES,
    ConsistencyReport,
    compare_with_exchange,
)
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import SymbolDay, registered_symbols
from helios_pipeline.defs.resources import ExchangeResource
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore

# How many offending rows or ranges a failed check lists in its metadata.
SHOWN = 10


@dataclass(frozen=True)
class Outcome:
    """One partition's check result."""

    passed: bool
    metadata: dict[str, dg.MetadataValue]


def check_result(
    context: dg.AssetExecutionContext,
    check_key: dg.AssetCheckKey,
    outcomes: dict[str, Outcome],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """The run's result for one check over the partitions it covered (``outcomes`` by key)."""
    if context.has_partition_key:  # Dagster attributes the result to that partition itself
        (outcome,) = outcomes.values()
        return dg.AssetCheckResult(
            asset_key=check_key.asset_key, check_name=check_key.name, passed=outcome.passed,
            metadata=outcome.metadata, severity=severity,
        )
    for key, outcome in outcomes.items():
        context.instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=check_key.asset_key, check_name=check_key.name, passed=outcome.passed,
                metadata=outcome.metadata, severity=severity, partition=key,
            )
        )
    failed = sorted(key for key, outcome in outcomes.items() if not outcome.passed)
    return dg.AssetCheckResult(
        asset_key=check_key.asset_key, check_name=check_key.name, passed=not failed,
        severity=severity,
        metadata={
            "partitions_checked": dg.MetadataValue.int(len(outcomes)),
            "partitions_failed": dg.MetadataValue.int(len(failed)),
            "first_failed": dg.MetadataValue.text(", ".join(failed[:SHOWN]) or "none"),
        },
    )


def gap_check_key() -> dg.AssetCheckKey:
    """Key of ``ohlcv_1m_gap_check``."""
    return dg.AssetCheckKey(OHLCV_1M, "ohlcv_1m_gap_check")


def consistency_check_key(timeframe: Timeframe) -> dg.AssetCheckKey:
    """Key of ``ohlcv_<tf>_exchange_consistency_check``."""
    name = f"ohlcv_{timeframe.value}_exchange_consistency_check"
    return dg.AssetCheckKey(candle_key(timeframe), name)


def candle_check_specs(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """Checks the candle multi-asset evaluates right after it stores each partition."""
    gap = dg.AssetCheckSpec(
        gap_check_key().name, asset=OHLCV_1M, partitions_def=partitions,
        description="Warns when a day has minutes the exchange never sent (recorded, not filled).",
    )
    consistency = [
        dg.AssetCheckSpec(
            consistency_check_key(tf).name, asset=candle_key(tf), partitions_def=partitions,
            description=f"Derived {tf.value} candles equal the exchange's own, value for value.",
        )
        for tf in DERIVED_TIMEFRAMES
    ]
    return [gap, *consistency]


def gap_outcome(catalog: MetadataStore, exchange_id: str, p: SymbolDay) -> Outcome:
    """Gap check of one partition, from its catalog row."""
    record = catalog.latest_partition(exchange_id, p.symbol, Timeframe.M1, p.day)
    if record is None:
        return Outcome(False, {"error": dg.MetadataValue.text("not in the catalog")})
    ranges = [f"{ms_to_datetime(a):%H:%M}-{ms_to_datetime(b):%H:%M}"
              for a, b in record.missing_ranges]
    return Outcome(record.missing_minutes == 0, {
        "missing_minutes": dg.MetadataValue.int(record.missing_minutes),
        "missing_ranges": dg.MetadataValue.text(", ".join(ranges[:SHOWN]) or "none"),
        "rows": dg.MetadataValue.int(record.rows),
    })


async def consistency_outcomes(
    exchange: ExchangeResource, store: CandleStore, timeframe: Timeframe,
    wanted: Sequence[SymbolDay],
) -> list[Outcome]:
    """Consistency check of each partition against the exchange's own candles."""
    async with exchange.client() as client:
        reports = [await compare_with_exchange(client, store, p.symbol, timeframe, p.day)
                   for p in wanted]
    return [_consistency_outcome(r) for r in reports]


def _consistency_outcome(report: ConsistencyReport) -> Outcome:
    shown = [f"{ms_to_datetime(m.open_ms):%H:%M} {m.field}: ours {m.ours} vs exchange {m.exchange}"
             for m in report.mismatches[:SHOWN]]
    return Outcome(report.consistent, {
        "compared": dg.MetadataValue.int(report.compared),
        "mismatches": dg.MetadataValue.int(len(report.mismatches)),
        "first_mismatches": dg.MetadataValue.text("\n".join(shown) or "none"),
        "only_ours": dg.MetadataValue.int(len(report.only_ours)),
        "only_exchange": dg.MetadataValue.int(len(report.only_exchange)),
    })


def build_freshness_check(deadline_hour: int) -> dg.AssetChecksDefinition:
    """``ohlcv_1m_freshness_check``: yesterday's partition of every symbol is in by the deadline."""

    @dg.asset_check(
        asset=OHLCV_1M, name="ohlcv_1m_freshness_check",
        description=f"Yesterday's ohlcv_1m partition of every symbol is stored by "
                    f"{deadline_hour:02d}:00 UTC.",
    )
    def ohlcv_1m_freshness_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = datetime.now(tz=UTC)
        yesterday = (now - timedelta(days=1)).date().isoformat()
        symbols = registered_symbols(context.instance)
        done = context.instance.get_materialized_partitions(OHLCV_1M)
        late = sorted(s for s in symbols if f"{yesterday}|{s}" not in done)
        overdue = now.hour >= deadline_hour
        return dg.AssetCheckResult(
            passed=not (late and overdue),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "day": dg.MetadataValue.text(yesterday),
                "symbols": dg.MetadataValue.int(len(symbols)),
                "missing": dg.MetadataValue.text(", ".join(late[:SHOWN]) or "none"),
                "deadline_utc": dg.MetadataValue.text(f"{deadline_hour:02d}:00"),
            },
        )

    return ohlcv_1m_freshness_check
