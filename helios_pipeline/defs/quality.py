"""The ``data_quality_report`` asset: a daily HTML report, headline metadata and alerts."""

import asyncio
from datetime import date

import dagster as dg

from helios_pipeline.defs.cross import REFERENCE_OHLCV_1M
from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import DAY_DIM, registered_symbols
from helios_pipeline.defs.resources import (
    AlertsResource,
    ExchangeResource,
    ReferenceExchangeResource,
    StorageResource,
)
from helios_pipeline.domain.symbols import from_storage_id
from helios_pipeline.quality.alerts import alerts_from_summary
from helios_pipeline.quality.daily import Venue, assess_day


def build_quality_report_asset(start_date: str) -> dg.AssetsDefinition:
    """``data_quality_report``, one partition per UTC day, built from that day's ohlcv_1m.

    When a reference venue is configured its closes join the report as the cross-exchange
    comparison.
    """
    by_day = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DAY_DIM)

    @dg.asset(
        name="data_quality_report",
        partitions_def=dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC"),
        deps=[dg.AssetDep(key, partition_mapping=by_day) for key in (OHLCV_1M, REFERENCE_OHLCV_1M)],
        group_name="quality",
        kinds={"html"},
        description="Daily data-quality report (gaps, quarantined rows, outliers, scores) as "
                    "HTML under system/data_quality_reports/; alerts go to the log and webhook.",
    )
    def data_quality_report(
        context: dg.AssetExecutionContext,
        exchange: ExchangeResource,
        reference_exchange: ReferenceExchangeResource,
        storage: StorageResource,
        alerts: AlertsResource,
    ) -> dg.MaterializeResult[None]:
        day = date.fromisoformat(context.partition_key)
        symbols = [from_storage_id(s) for s in registered_symbols(context.instance)]
        reference = reference_exchange.venue()
        second = (Venue(reference.exchange_id, storage.root, qualifier=reference.qualifier)
                  if reference is not None else None)
        report = assess_day(Venue(exchange.exchange_id, storage.root), symbols, day, second)
        sent = asyncio.run(alerts.manager().send_all(alerts_from_summary(report.summary)))
        metadata: dict[str, object] = dict(report.summary.headline())
        metadata["report"] = dg.MetadataValue.path(str(report.path))
        metadata["alerts_sent"] = sent
        return dg.MaterializeResult(metadata=metadata)  # type: ignore[arg-type]

    return data_quality_report
