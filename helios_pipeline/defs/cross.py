"""Cross-exchange assets: the reference venue's 1m candles and where the two venues diverge.

Built only when ``HELIOS_REFERENCE_EXCHANGE`` names a second venue. Its candles are stored under
exchange-qualified folders (``okx.BTCUSDT``) in the same data root.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from helios_pipeline.defs.assets import (
    MAX_PARTITIONS_PER_RUN,
    ingest_partitions,
    partition_metadata,
)
from helios_pipeline.defs.checks import SHOWN, Outcome, check_result
from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.quality.divergence import DivergenceDay, compare_day
from helios_pipeline.validation.rules import ValidationThresholds

DIVERGENCE = dg.AssetKey("cross_exchange_divergence")
DIVERGENCE_CHECK = dg.AssetCheckKey(DIVERGENCE, "cross_exchange_divergence_check")


def reference_key(reference: str) -> dg.AssetKey:
    """Asset key of the reference venue's 1m candles (``okx/ohlcv_1m``)."""
    return dg.AssetKey([reference, "ohlcv_1m"])


def build_reference_candles(
    partitions: dg.MultiPartitionsDefinition, reference: str, thresholds: ValidationThresholds
) -> dg.AssetsDefinition:
    """``<reference>/ohlcv_1m``: the same symbols and days from the second venue."""

    @dg.asset(
        key=reference_key(reference), partitions_def=partitions, output_required=False,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        pool=f"exchange_{reference}", group_name="market_data", kinds={"parquet"},
        description=f"1-minute candles from {reference}, for cross-exchange comparison.",
    )
    def reference_candles(
        context: dg.AssetExecutionContext, reference_exchange: ExchangeResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization]:
        wanted = [SymbolDay.from_key(partitions, k) for k in context.partition_keys]
        reports = ingest_partitions(reference_exchange, storage, wanted, thresholds)
        for report in asyncio.run(reports):
            yield dg.AssetMaterialization(
                asset_key=context.asset_key, partition=SymbolDay(report.symbol, report.day).key,
                metadata=partition_metadata(report),
            )

    return reference_candles


def build_divergence_asset(
    partitions: dg.MultiPartitionsDefinition, reference: str, threshold: float
) -> dg.AssetsDefinition:
    """``cross_exchange_divergence``: minutes where the venues' closes differ > ``threshold``."""

    @dg.asset(
        key=DIVERGENCE, partitions_def=partitions, output_required=False,
        deps=[OHLCV_1M, reference_key(reference)], group_name="quality", kinds={"csv"},
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[dg.AssetCheckSpec(
            DIVERGENCE_CHECK.name, asset=DIVERGENCE, partitions_def=partitions,
            description=f"No minute where the closes differ by more than {threshold:.0%}.",
        )],
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        description=f"Arbitrage view: minutes where {reference} and the primary venue differ by "
                    f"more than {threshold:.0%}, listed per symbol and day.",
    )
    def cross_exchange_divergence(
        context: dg.AssetExecutionContext, storage: StorageResource
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        outcomes: dict[str, Outcome] = {}
        for key in context.partition_keys:
            p = SymbolDay.from_key(partitions, key)
            day = compare_day(Path(storage.data_dir), p.symbol, p.day, reference, threshold)
            metadata = _divergence_metadata(day)
            outcomes[key] = Outcome(day.above.empty, metadata)
            yield dg.AssetMaterialization(asset_key=DIVERGENCE, partition=p.key, metadata=metadata)
        yield check_result(context, DIVERGENCE_CHECK, outcomes)

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
