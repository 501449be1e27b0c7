"""Candle assets per symbol x day: ``ohlcv_1m`` from the exchange, 5m to 1d derived from it.

One multi-asset: a run that fetches 1m candles checks them and derives the longer timeframes in
the same step, from the candles in memory, while lineage in the UI still shows every derived
asset depending on ``ohlcv_1m``. A run covers one partition (schedules, sensors, the UI) or a
range (a UI backfill, under the backfill policy); ``defs.candle_run`` does the work, chunk by
chunk, and each partition gets its own materialisation and its own check results. Selecting only
derived assets rebuilds them from the stored 1m files without calling the exchange. Backfills
from the CLI and Python run the same work through ``ohlcv_backfill_job`` (``defs.history``).
"""

from collections.abc import Iterator
from itertools import groupby

import dagster as dg

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES
from helios_pipeline.defs.candle_run import CHUNK_DAYS, CandleEvent, CandleRun
from helios_pipeline.defs.checks import candle_check_specs
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import (
    ExchangeResource,
    ReferenceExchangeResource,
    StorageResource,
)
from helios_pipeline.validation.rules import ValidationThresholds

# A month of days per run of a UI backfill.
MAX_PARTITIONS_PER_RUN = 31


def _specs(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetSpec]:
    common = {"partitions_def": partitions, "skippable": True, "group_name": "market_data",
              "kinds": {"parquet"}}
    minute = dg.AssetSpec(
        OHLCV_1M,
        description=(
            "1-minute candles per symbol and UTC day, fetched through ccxt and stored at "
            "market_data/{SYMBOL}/{YYYY}/{MM}/ohlcv_1m_{YYYYMMDD}. Missing minutes are recorded "
            "in the catalog, never filled. Loads as a DataFrame indexed by UTC open time."
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
    return [spec.with_io_manager_key("candle_io_manager") for spec in (minute, *derived)]


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
        reference_exchange: ReferenceExchangeResource,
    ) -> Iterator[CandleEvent]:
        run = CandleRun(context.log, exchange, storage, thresholds, context.selected_asset_keys,
                        context.selected_asset_check_keys, outputs=context.has_partition_key,
                        reference=reference_exchange.venue())
        wanted = sorted((SymbolDay.from_key(partitions, k) for k in context.partition_keys),
                        key=lambda p: (p.symbol, p.day))
        for symbol, group in groupby(wanted, key=lambda p: p.symbol):
            days = [p.day for p in group]
            for start in range(0, len(days), CHUNK_DAYS):
                yield from run.chunk(symbol, days[start : start + CHUNK_DAYS])

    return ohlcv_candles


