"""Re-examine quarantined price moves when the reference venue's candles land.

A real extreme move is quarantined (``unconfirmed_by`` or the seed rule) when the reference venue
could not confirm it at ingest: none was configured yet, it was down, or its history started
later. ``reexamine_sensor`` watches ``reference_ohlcv_1m``: for each newly materialised
partition whose primary day holds candles quarantined for price rules only, it launches
``reexamine_job`` for that partition. The job asks the reference venue again
(:func:`helios_pipeline.batch.reexamine.reexamine_day`): a confirmed candle goes back into the
1m partition (a new catalog version, flagged ``confirmed_move``, the reference's candles as
evidence in ``candle_decisions``), the day's 5m..1d are derived again, and the run records the new
versions as materialisations with the 1m schema check re-evaluated on the new version. Candles
the reference does not confirm stay quarantined; a later reference materialisation of the same
partition asks again.

The cursor is the storage id of the last ``reference_ohlcv_1m`` materialisation looked at.
"""

import asyncio
from collections.abc import Iterator

import dagster as dg

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES
from helios_pipeline.batch.partition_checks import schema_outcomes
from helios_pipeline.batch.reexamine import reexaminable, reexamine_day
from helios_pipeline.batch.release import Released
from helios_pipeline.defs.candle_run import partition_metadata
from helios_pipeline.defs.checks import SCHEMA_CHECK, evaluation
from helios_pipeline.defs.cross import REFERENCE_OHLCV_1M
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import ReferenceExchangeResource, StorageResource
from helios_pipeline.validation.rules import ValidationThresholds

REEXAMINE_JOB = "reexamine_job"
#: Reference materialisations read per sensor tick; the rest wait for the next tick.
BATCH = 200

ReexamineEvent = dg.AssetMaterialization | dg.AssetCheckEvaluation


def build_reexamine_job(
    partitions: dg.MultiPartitionsDefinition, exchange_id: str, thresholds: ValidationThresholds
) -> dg.JobDefinition:
    """``reexamine_job``: one partition's quarantined price moves, asked of the reference again."""

    @dg.op(out={}, pool="exchange_reference",
           description="Asks the reference venue again about the partition's candles quarantined "
                       "for price rules; restores the confirmed ones and rebuilds 5m..1d.")
    def reexamine_quarantined(
        context: dg.OpExecutionContext, reference_exchange: ReferenceExchangeResource,
        storage: StorageResource,
    ) -> Iterator[ReexamineEvent]:
        partition = SymbolDay.from_key(partitions, context.partition_key)
        venue = reference_exchange.venue()
        if venue is None:
            raise dg.Failure("No reference venue is configured (HELIOS_REFERENCE_EXCHANGE): "
                             "there is nothing to confirm the quarantined candles with.")
        candles, catalog = storage.candles(), storage.metadata()

        async def ask() -> list[Released]:
            async with venue.client() as client:
                return await reexamine_day(client, candles, catalog, storage.quarantine(),
                                           exchange_id, partition.symbol, partition.day,
                                           thresholds)

        released = asyncio.run(ask())
        still = reexaminable(storage.quarantine(), partition.symbol, partition.day)
        context.log.info(f"{partition.symbol} {partition.day}: {len(released)} candle(s) "
                         f"confirmed by {venue.exchange_id} and restored, {len(still)} still "
                         "quarantined.")
        if not released:
            return
        storage.audit().record(
            "reexamine", exchange_id, symbol=partition.symbol, day=partition.day.isoformat(),
            reference=venue.exchange_id,
            restored=[f"{r.candle.timestamp:%H:%M}" for r in released])
        last = released[-1]
        key = partition.key
        yield dg.AssetMaterialization(asset_key=OHLCV_1M, partition=str(key), metadata={
            **partition_metadata(last.minute),
            "restored": dg.MetadataValue.text(", ".join(
                f"{r.candle.timestamp:%H:%M} (low {r.candle.low}, high {r.candle.high})"
                for r in released)),
            "confirmed_by": dg.MetadataValue.text(venue.exchange_id),
        })
        outcome = schema_outcomes(candles, partition.symbol, [partition.day])[partition.day]
        yield evaluation(SCHEMA_CHECK, key, outcome, blocking=True)
        for timeframe in DERIVED_TIMEFRAMES:
            yield dg.AssetMaterialization(
                asset_key=candle_key(timeframe), partition=str(key),
                metadata={"version": dg.MetadataValue.int(last.derived_versions[timeframe]),
                          "reason": dg.MetadataValue.text("rebuilt after re-examination")})

    @dg.job(name=REEXAMINE_JOB, partitions_def=partitions,
            description="Restores a partition's quarantined price moves that the reference venue "
                        "now confirms (launched by reexamine_sensor).")
    def reexamine_job() -> None:
        reexamine_quarantined()

    return reexamine_job


def build_reexamine_sensor(partitions: dg.MultiPartitionsDefinition) -> dg.SensorDefinition:
    """Launch ``reexamine_job`` for reference partitions whose primary day holds price moves."""

    @dg.sensor(
        name="reexamine_sensor", job_name=REEXAMINE_JOB, minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When reference_ohlcv_1m lands for a day whose primary candles hold price "
                    "moves in quarantine, asks the reference venue again (reexamine_job).",
    )
    def reexamine_sensor(
        context: dg.SensorEvaluationContext, storage: StorageResource,
    ) -> dg.SensorResult | dg.SkipReason:
        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=REFERENCE_OHLCV_1M, after_storage_id=after),
            limit=BATCH, ascending=True).records
        if not records:
            return dg.SkipReason("No new reference_ohlcv_1m materialisation.")
        quarantine = storage.quarantine()
        requests = []
        for record in records:
            if record.partition_key is None:
                continue
            partition = SymbolDay.from_key(partitions, record.partition_key)
            if reexaminable(quarantine, partition.symbol, partition.day):
                requests.append(dg.RunRequest(
                    run_key=f"{record.partition_key}@{record.storage_id}",
                    partition_key=record.partition_key))
        return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))

    return reexamine_sensor
