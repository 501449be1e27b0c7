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
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.storage.metadata import PartitionRecord

# A month of days per run: a month-long backfill of one symbol is one run, not 31.
MAX_PARTITIONS_PER_RUN = 31
OHLCV_1M = dg.AssetKey("ohlcv_1m")


def candle_key(timeframe: Timeframe) -> dg.AssetKey:
    """Asset key of the candles of ``timeframe`` (``ohlcv_5m``)."""
    return dg.AssetKey(f"ohlcv_{timeframe.value}")


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
    partitions: dg.MultiPartitionsDefinition, exchange_id: str
) -> dg.AssetsDefinition:
    """The candle multi-asset for one exchange; its pool limits concurrent steps on that venue."""

    @dg.multi_asset(
        name="ohlcv_candles",
        specs=_specs(partitions),
        partitions_def=partitions,
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        pool=f"exchange_{exchange_id}",
    )
    def ohlcv_candles(
        context: dg.AssetExecutionContext,
        exchange: ExchangeResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization]:
        wanted = [SymbolDay.from_key(partitions, k) for k in context.partition_keys]
        selected = context.selected_asset_keys
        if OHLCV_1M in selected:
            context.log.info(f"Ingesting {len(wanted)} partition(s) from {exchange.exchange_id}")
            for report in asyncio.run(_ingest(exchange, storage, wanted)):
                yield _materialization(OHLCV_1M, report.symbol, report.day,
                                       partition_metadata(report))
        for timeframe in DERIVED_TIMEFRAMES:
            if candle_key(timeframe) in selected:
                yield from _derive(exchange.exchange_id, storage, wanted, timeframe)

    return ohlcv_candles


async def _ingest(
    exchange: ExchangeResource, storage: StorageResource, wanted: list[SymbolDay]
) -> list[PartitionReport]:
    async with exchange.client() as client:
        return await ingest_ohlcv_partitions(
            client, storage.candles(), storage.metadata(), [(p.symbol, p.day) for p in wanted]
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
    return _record_metadata(report.record, report.changed)


def derived_metadata(report: DerivedReport) -> dict[str, dg.MetadataValue]:
    """Materialisation metadata of one derived partition."""
    return {
        **_record_metadata(report.record, report.changed),
        "partial_buckets": dg.MetadataValue.int(report.partial_buckets),
    }
