"""Candle assets per symbol x day: ``ohlcv_1m`` from the exchange, 5m to 1d derived from it.

They are one multi-asset so a run that fetches 1m candles derives the longer timeframes in the
same step, while lineage in the UI still
shows every derived asset depending on ``ohlcv_1m``. Selecting only derived assets rebuilds them
from the stored 1m files without calling the exchange.
"""

import asyncio
from collections.abc import Iterator

import dagster as dg

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, DerivedReport, derive_day
from helios_pipeline.batch.ohlcv import PartitionReport, ingest_ohlcv_partitions
from helios_pipeline.defs.checks import (
    Outcome,
    candle_check_specs,
    check_result,
    consistency_check_key,
    consistency_outcomes,
    gap_check_key,
    gap_outcome,
)
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.storage.metadata import PartitionRecord
from helios_pipeline.validation.rules import ValidationThresholds

# A month of days per run: a month-long backfill of one symbol is one run, not 31.
MAX_PARTITIONS_PER_RUN = 31


def _specs(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetSpec]:
    common = {"partitions_def": partitions, "skippable": True, "group_name": "market_data",
              "kinds": {"parquet"}}
    minute = dg.AssetSpec(
        OHLCV_1M,
        description=(
            "1-minute candles per symbol and UTC day, fetched through ccxt and stored at "
            "market_data/{SYMBOL}/{YYYY}/{MM}/ohlcv_1m_{YYYYMMDD}. Missing minutes are recorded "
            "in the catalog, never filled."
        ),
        **common,  # type: ignore[arg-type]
    )
    derived = [
        dg.AssetSpec(
            candle_key(tf),
            deps=[OHLCV_1M],
            description=(
                f"{tf.value} candles aggregated exactly from ohlcv_1m (ohlcv_{tf.value}_YYYYMMDD); "
                "a bucket with missing minutes is flagged partial_bucket."
            ),
            **common,  # type: ignore[arg-type]
        )
        for tf in DERIVED_TIMEFRAMES
    ]
    return [minute, *derived]


def build_candle_assets(
    partitions: dg.MultiPartitionsDefinition, exchange_id: str, thresholds: ValidationThresholds
) -> dg.AssetsDefinition:
    """The candle multi-asset for one exchange; its pool limits concurrent steps on that venue.

    ``thresholds`` (``HELIOS_VALIDATION``) decide what the ingest quarantines.
    """

    @dg.multi_asset(
        name="ohlcv_candles",
        specs=_specs(partitions),
        check_specs=candle_check_specs(partitions),
        partitions_def=partitions,
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        pool=f"exchange_{exchange_id}",
    )
    def ohlcv_candles(
        context: dg.AssetExecutionContext,
        exchange: ExchangeResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        wanted = [SymbolDay.from_key(partitions, k) for k in context.partition_keys]
        selected = context.selected_asset_keys
        if OHLCV_1M in selected:
            context.log.info(f"Ingesting {len(wanted)} partition(s) from {exchange.exchange_id}")
            for report in asyncio.run(ingest_partitions(exchange, storage, wanted, thresholds)):
                yield _materialization(OHLCV_1M, report.symbol, report.day,
                                       partition_metadata(report))
        for timeframe in DERIVED_TIMEFRAMES:
            if candle_key(timeframe) in selected:
                yield from _derive(exchange.exchange_id, storage, wanted, timeframe)
        yield from _checks(context, exchange, storage, wanted)

    return ohlcv_candles


def _checks(
    context: dg.AssetExecutionContext, exchange: ExchangeResource, storage: StorageResource,
    wanted: list[SymbolDay],
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate the selected candle checks over the partitions just stored."""
    selected = context.selected_asset_check_keys
    keys = [str(p.key) for p in wanted]
    if gap_check_key() in selected:
        catalog = storage.metadata()
        gaps = [gap_outcome(catalog, exchange.exchange_id, p) for p in wanted]
        yield check_result(context, gap_check_key(), _by_key(keys, gaps),
                           dg.AssetCheckSeverity.WARN)
    store = storage.candles()
    for timeframe in DERIVED_TIMEFRAMES:
        if consistency_check_key(timeframe) in selected:
            found = asyncio.run(consistency_outcomes(exchange, store, timeframe, wanted))
            yield check_result(context, consistency_check_key(timeframe), _by_key(keys, found))


def _by_key(keys: list[str], outcomes: list[Outcome]) -> dict[str, Outcome]:
    return dict(zip(keys, outcomes, strict=True))


async def ingest_partitions(
    exchange: ExchangeResource, storage: StorageResource, wanted: list[SymbolDay],
    thresholds: ValidationThresholds,
) -> list[PartitionReport]:
    """Fetch, validate and store ``wanted`` partitions from ``exchange``."""
    async with exchange.client() as client:
        return await ingest_ohlcv_partitions(
            client, storage.candles(), storage.metadata(), [(p.symbol, p.day) for p in wanted],
            thresholds=thresholds,
        )


def _derive(
    exchange_id: str, storage: StorageResource, wanted: list[SymbolDay], timeframe: Timeframe
) -> Iterator[dg.AssetMaterialization]:
    store, metadata = storage.candles(), storage.metadata()
    for p in wanted:
        report = derive_day(store, metadata, exchange_id, p.symbol, p.day, timeframe)
        yield _materialization(candle_key(timeframe), p.symbol, p.day, derived_metadata(report))


def _materialization(
    key: dg.AssetKey, symbol: str, day: object, metadata: dict[str, dg.MetadataValue]
) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=key, partition=SymbolDay(symbol, day).key, metadata=metadata  # type: ignore[arg-type]
    )


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
