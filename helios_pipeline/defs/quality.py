"""The ``data_quality_report`` asset: a daily HTML report, headline metadata and alerts."""

import asyncio
import logging
from datetime import date
from pathlib import Path

import dagster as dg

from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import DAY_DIM, SYMBOLS
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.domain.symbols import from_storage_id
from helios_pipeline.quality.alerts import AlertManager, alerts_from_summary
from helios_pipeline.quality.daily import Venue, assess_day

LOG = logging.getLogger("helios.quality")


class AlertsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where quality alerts go: the log always, a webhook when configured."""

    webhook_url: str | None = None

    def manager(self) -> AlertManager:
        """An alert manager for one run."""
        return AlertManager(self.webhook_url, LOG)


def build_quality_report_asset(start_date: str, reference: str | None) -> dg.AssetsDefinition:
    """``data_quality_report``, one partition per UTC day, built from that day's ohlcv_1m.

    With a ``reference`` venue its closes join the report as the cross-exchange comparison.
    """
    by_day = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DAY_DIM)
    upstream = [OHLCV_1M, *([dg.AssetKey([reference, "ohlcv_1m"])] if reference else [])]

    @dg.asset(
        name="data_quality_report",
        partitions_def=dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC"),
        deps=[dg.AssetDep(key, partition_mapping=by_day) for key in upstream],
        group_name="quality",
        kinds={"html"},
        description="Daily data-quality report (gaps, quarantined rows, outliers, scores) as "
                    "HTML under system/data_quality_reports/; alerts go to the log and webhook.",
    )
    def data_quality_report(
        context: dg.AssetExecutionContext,
        exchange: ExchangeResource,
        storage: StorageResource,
        alerts: AlertsResource,
    ) -> dg.MaterializeResult[None]:
        day = date.fromisoformat(context.partition_key)
        storage_ids = context.instance.get_dynamic_partitions(SYMBOLS.name or "symbols")
        symbols = [from_storage_id(s) for s in storage_ids]
        data_dir = Path(storage.data_dir)
        second = Venue(reference, data_dir, qualifier=reference) if reference else None
        report = assess_day(Venue(exchange.exchange_id, data_dir), symbols, day, second)
        sent = asyncio.run(alerts.manager().send_all(alerts_from_summary(report.summary)))
        metadata: dict[str, object] = dict(report.summary.headline())
        metadata["report"] = dg.MetadataValue.path(str(report.path))
        metadata["alerts_sent"] = sent
        return dg.MaterializeResult(metadata=metadata)  # type: ignore[arg-type]

    return data_quality_report
