"""Asset checks on the candle assets: schema, expectations, gaps, exchange consistency, freshness.

The partitioned checks are evaluated by the candle multi-asset itself, in the run that stores
the partitions: each partition gets its own result (an ``AssetCheckEvaluation`` naming the
partition), whether the run covers one day or a range. ``ohlcv_1m_schema_check`` is blocking:
a partition that fails it gets no derived timeframes, and the run fails once every other result
is recorded. ``ohlcv_1m_exchange_consistency_check`` compares every timeframe the run derives
(5m..1d) with the exchange's own candles: one result per day, the timeframes in its metadata
(one event instead of five per partition: check events are most of what a backfill spends in
Dagster, docs/batch.md). ``ohlcv_1m_freshness_check`` is not partitioned; an hourly job runs it.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from helios_pipeline.batch.partition_checks import SHOWN, CheckOutcome
from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import registered_symbols

SCHEMA_CHECK = dg.AssetCheckKey(OHLCV_1M, "ohlcv_1m_schema_check")
EXPECTATIONS_CHECK = dg.AssetCheckKey(OHLCV_1M, "ohlcv_1m_expectations_check")
GAP_CHECK = dg.AssetCheckKey(OHLCV_1M, "ohlcv_1m_gap_check")
CONSISTENCY_CHECK = dg.AssetCheckKey(OHLCV_1M, "ohlcv_1m_exchange_consistency_check")
FRESHNESS_CHECK = dg.AssetCheckKey(OHLCV_1M, "ohlcv_1m_freshness_check")
SEVERITY = {SCHEMA_CHECK: dg.AssetCheckSeverity.ERROR,
            EXPECTATIONS_CHECK: dg.AssetCheckSeverity.WARN,
            GAP_CHECK: dg.AssetCheckSeverity.WARN}


def gap_check_key() -> dg.AssetCheckKey:
    """Key of ``ohlcv_1m_gap_check``."""
    return GAP_CHECK


def candle_check_specs(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """Checks the candle multi-asset evaluates for each partition it stores."""
    return [
        dg.AssetCheckSpec(
            SCHEMA_CHECK.name, asset=OHLCV_1M, partitions_def=partitions, blocking=True,
            description="The stored file against the pandera model of a partition: exact "
                        "decimal128 prices and sizes, OHLC consistency, whole-minute open times "
                        "inside the day, strictly increasing. Blocking: a failing day gets no "
                        "derived timeframes.",
        ),
        dg.AssetCheckSpec(
            EXPECTATIONS_CHECK.name, asset=OHLCV_1M, partitions_def=partitions,
            description="The validation rules' Great Expectations suite over the stored "
                        "candles: price jumps, price vs recent average (hard), volume outliers "
                        "(soft, counted); failing rows in the metadata.",
        ),
        dg.AssetCheckSpec(
            GAP_CHECK.name, asset=OHLCV_1M, partitions_def=partitions,
            description="Warns when a day has minutes the exchange never sent (recorded, not "
                        "filled); rows + quarantined + missing account for the 1,440 minutes.",
        ),
        dg.AssetCheckSpec(
            CONSISTENCY_CHECK.name, asset=OHLCV_1M, partitions_def=partitions,
            description="The day's 5m, 15m, 1h, 4h and 1d candles, derived from these 1m "
                        "candles, equal the exchange's own candles value for value (each "
                        "timeframe the run derives; per-timeframe counts and the first "
                        "mismatches in the metadata).",
        ),
    ]


def evaluation(
    key: dg.AssetCheckKey, partition: dg.MultiPartitionKey, outcome: CheckOutcome,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR, blocking: bool = False,
) -> dg.AssetCheckEvaluation:
    """The result of one check on one partition, recorded in the run that evaluated it."""
    return dg.AssetCheckEvaluation(
        asset_key=key.asset_key, check_name=key.name, passed=outcome.passed,
        metadata=dict(outcome.metadata), severity=severity, blocking=blocking,
        partition=str(partition),
    )


def build_freshness_check(deadline_hour: int) -> dg.AssetChecksDefinition:
    """``ohlcv_1m_freshness_check``: yesterday's partition of every symbol is in by the deadline."""

    @dg.asset_check(
        asset=OHLCV_1M, name=FRESHNESS_CHECK.name,
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
