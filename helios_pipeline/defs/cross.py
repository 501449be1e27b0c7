"""Cross-exchange assets: the reference venue's 1m candles and where the two venues diverge.

The assets are always defined; the venue is configuration (``HELIOS_REFERENCE_EXCHANGE``, the
``reference_exchange`` resource). Its candles are stored under exchange-qualified folders
(``okx.BTCUSDT``) in the same data root. With no venue configured, ``reference_ohlcv_1m``
stores nothing and says so, and the divergence view (which waits for it) is never built.
"""

import asyncio
from collections.abc import Iterator
from datetime import date
from itertools import groupby

import dagster as dg

from helios_pipeline.batch.ingest import MinuteDay, Stores, ingest_minutes
from helios_pipeline.batch.partition_checks import SHOWN, CheckOutcome
from helios_pipeline.defs.assets import MAX_PARTITIONS_PER_RUN
from helios_pipeline.defs.candle_run import partition_metadata
from helios_pipeline.defs.checks import evaluation
from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import (
    ExchangeResource,
    ReferenceExchangeResource,
    StorageResource,
)
from helios_pipeline.quality.divergence import DivergenceDay, compare_day
from helios_pipeline.validation.rules import ValidationThresholds

DIVERGENCE = dg.AssetKey("cross_exchange_divergence")
DIVERGENCE_CHECK = dg.AssetCheckKey(DIVERGENCE, "cross_exchange_divergence_check")
REFERENCE_OHLCV_1M = dg.AssetKey("reference_ohlcv_1m")
NO_REFERENCE = ("No reference venue is configured (HELIOS_REFERENCE_EXCHANGE, e.g. okx, and "
                "HELIOS_REFERENCE_EXCHANGE_URL for a simulated one)")


def build_reference_candles(
    partitions: dg.MultiPartitionsDefinition, thresholds: ValidationThresholds
) -> dg.AssetsDefinition:
    """``reference_ohlcv_1m``: the same symbols and days from the reference venue."""

    @dg.asset(
        key=REFERENCE_OHLCV_1M, partitions_def=partitions, output_required=False,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        pool="exchange_reference", group_name="market_data", kinds={"parquet"},
        description="1-minute candles of the reference venue (HELIOS_REFERENCE_EXCHANGE), "
                    "under exchange-qualified folders (okx.BTCUSDT), for cross-exchange checks.",
    )
    def reference_ohlcv_1m(
        context: dg.AssetExecutionContext, reference_exchange: ReferenceExchangeResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization]:
        venue = reference_exchange.venue()
        if venue is None:
            context.log.warning(f"{NO_REFERENCE}: nothing to ingest.")
            return
        wanted = sorted((SymbolDay.from_key(partitions, k) for k in context.partition_keys),
                        key=lambda p: (p.symbol, p.day))
        for symbol, group in groupby(wanted, key=lambda p: p.symbol):
            yield from reference_candles(venue, storage, thresholds, symbol, [p.day for p in group])

    return reference_ohlcv_1m


def reference_candles(
    venue: ExchangeResource, storage: StorageResource, thresholds: ValidationThresholds,
    symbol: str, days: list[date],
) -> Iterator[dg.AssetMaterialization]:
    """Ingest ``days`` of ``symbol`` from the reference venue; a materialisation per day."""
    stores = Stores(storage.candles(), storage.metadata(), storage.quarantine())

    async def ingest() -> list[MinuteDay]:
        async with venue.client() as client:
            return await ingest_minutes(client, stores, symbol, days, thresholds)

    for minute in asyncio.run(ingest()):
        yield dg.AssetMaterialization(
            asset_key=REFERENCE_OHLCV_1M, partition=SymbolDay(symbol, minute.day).key,
            metadata={**partition_metadata(minute.report),
                      "exchange": dg.MetadataValue.text(venue.exchange_id)},
        )


def build_divergence_asset(
    partitions: dg.MultiPartitionsDefinition, threshold: float
) -> dg.AssetsDefinition:
    """``cross_exchange_divergence``: minutes where the venues' closes differ > ``threshold``."""

    @dg.asset(
        key=DIVERGENCE, partitions_def=partitions, output_required=False,
        deps=[OHLCV_1M, REFERENCE_OHLCV_1M], group_name="quality", kinds={"csv"},
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[dg.AssetCheckSpec(
            DIVERGENCE_CHECK.name, asset=DIVERGENCE, partitions_def=partitions,
            description=f"No minute where the closes differ by more than {threshold:.0%}.",
        )],
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        description=f"Arbitrage view: minutes where the reference venue and the primary venue "
                    f"differ by more than {threshold:.0%}, listed per symbol and day.",
    )
    def cross_exchange_divergence(
        context: dg.AssetExecutionContext, reference_exchange: ReferenceExchangeResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult[None] | dg.AssetCheckEvaluation
                  | dg.AssetCheckResult]:
        reference = reference_exchange.exchange_id
        if reference is None:
            raise dg.Failure(f"{NO_REFERENCE}: there is nothing to compare with.")
        for key in context.partition_keys:
            p = SymbolDay.from_key(partitions, key)
            day = compare_day(storage.root, p.symbol, p.day, reference, threshold)
            metadata = _divergence_metadata(day)
            outcome = CheckOutcome(day.above.empty, {
                "minutes_above_threshold": len(day.above),
                "max_divergence": day.max_divergence,
            })
            if context.has_partition_key:  # outputs: Dagster attributes them to the partition
                yield dg.MaterializeResult(metadata=metadata)
                yield dg.AssetCheckResult(check_name=DIVERGENCE_CHECK.name,
                                          passed=outcome.passed, metadata=outcome.metadata)
            else:
                yield dg.AssetMaterialization(asset_key=DIVERGENCE, partition=p.key,
                                              metadata=metadata)
                yield evaluation(DIVERGENCE_CHECK, p.key, outcome)

    return cross_exchange_divergence


def _divergence_metadata(day: DivergenceDay) -> dict[str, dg.MetadataValue]:
    shown = [f"{ts:%H:%M} {row.price_a} vs {row.price_b} ({row.divergence:.2%})"
             for ts, row in day.above.head(SHOWN).iterrows()]
    return {
        "compared_minutes": dg.MetadataValue.int(day.compared),
        "minutes_above_threshold": dg.MetadataValue.int(len(day.above)),
        "max_divergence": dg.MetadataValue.float(day.max_divergence),
        "first_rows": dg.MetadataValue.text("\n".join(shown) or "none"),
        "path": dg.MetadataValue.path(str(day.path)),
    }
