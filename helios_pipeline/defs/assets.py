"""Candle assets: ``ohlcv_1m`` partitioned by symbol x day."""

import asyncio
from collections.abc import Iterator

import dagster as dg

from helios_pipeline.batch.ohlcv import PartitionReport, ingest_ohlcv_partitions
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.domain.timeframe import ms_to_datetime

# A month of days per run: a month-long backfill of one symbol is one run, not 31.
MAX_PARTITIONS_PER_RUN = 31


def build_ohlcv_1m(
    partitions: dg.MultiPartitionsDefinition, exchange_id: str
) -> dg.AssetsDefinition:
    """The ``ohlcv_1m`` asset for one exchange; its pool limits concurrent runs on that venue."""

    @dg.asset(
        name="ohlcv_1m",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        pool=f"exchange_{exchange_id}",
        output_required=False,
        group_name="market_data",
        kinds={"parquet"},
        description=(
            "1-minute candles per symbol and UTC day, fetched through ccxt and stored at "
            "market_data/{SYMBOL}/{YYYY}/{MM}/ohlcv_1m_{YYYYMMDD}. Missing minutes are "
            "recorded in the catalog, never filled."
        ),
    )
    def ohlcv_1m(
        context: dg.AssetExecutionContext,
        exchange: ExchangeResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization]:
        wanted = [SymbolDay.from_key(partitions, k) for k in context.partition_keys]
        context.log.info(f"Ingesting {len(wanted)} partition(s) from {exchange.exchange_id}")
        for report in asyncio.run(_ingest(exchange, storage, wanted)):
            yield dg.AssetMaterialization(
                asset_key=context.asset_key,
                partition=SymbolDay(report.symbol, report.day).key,
                metadata=partition_metadata(report),
            )

    return ohlcv_1m


async def _ingest(
    exchange: ExchangeResource, storage: StorageResource, wanted: list[SymbolDay]
) -> list[PartitionReport]:
    async with exchange.client() as client:
        return await ingest_ohlcv_partitions(
            client, storage.candles(), storage.metadata(), [(p.symbol, p.day) for p in wanted]
        )


def partition_metadata(report: PartitionReport) -> dict[str, dg.MetadataValue]:
    """Materialisation metadata of one partition: what a person checks in the UI."""
    record = report.record
    gaps = [
        f"{ms_to_datetime(first):%H:%M}-{ms_to_datetime(last):%H:%M}"
        for first, last in record.missing_ranges
    ]
    return {
        "rows": dg.MetadataValue.int(record.rows),
        "missing_minutes": dg.MetadataValue.int(record.missing_minutes),
        "missing_ranges": dg.MetadataValue.text(", ".join(gaps) or "none"),
        "path": dg.MetadataValue.path(record.path),
        "content_hash": dg.MetadataValue.text(record.content_hash),
        "version": dg.MetadataValue.int(record.version),
        "rewritten": dg.MetadataValue.bool(report.changed),
        "source": dg.MetadataValue.text(record.source),
    }
