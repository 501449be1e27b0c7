"""``build_defs()``: every asset, resource, job, schedule and sensor, configured from settings.

The asset graph is the same whatever the environment says: settings choose resources (which
exchanges, where the data root is, Redis, the webhook), thresholds and partition start dates,
never which assets exist. One exception: the optional InfluxDB mirror (``defs.influx``) exists
only when ``HELIOS_INFLUX_URL`` is set.
"""

from __future__ import annotations

import dagster as dg

from helios_pipeline.defs.archive import (
    ARCHIVE_JOB,
    ArchiveResource,
    build_archive_asset,
    build_archive_schedule,
    symbol_month_partitions,
)
from helios_pipeline.defs.assets import build_candle_assets
from helios_pipeline.defs.automation import (
    build_daily_schedule,
    build_freshness_schedule,
    build_report_schedule,
    build_symbols_sensor,
)
from helios_pipeline.defs.checks import build_freshness_check
from helios_pipeline.defs.cross import build_divergence_asset, build_reference_candles
from helios_pipeline.defs.executors import executor_for
from helios_pipeline.defs.healing import build_self_healing_sensor
from helios_pipeline.defs.history import build_backfill_job
from helios_pipeline.defs.influx import build_influx_defs
from helios_pipeline.defs.io import CandleIOManager
from helios_pipeline.defs.live_candles import build_live_candles_check
from helios_pipeline.defs.partitions import symbol_day_partitions
from helios_pipeline.defs.quality import build_quality_report_asset
from helios_pipeline.defs.realtime import (
    RealtimeMarketDataResource,
    build_stream_health_sensor,
    build_ticker_snapshots,
    build_ticker_snapshots_sensor,
    ticker_partitions,
)
from helios_pipeline.defs.reexamine import build_reexamine_job, build_reexamine_sensor
from helios_pipeline.defs.resources import (
    AlertsResource,
    ExchangeResource,
    MarketDataQueryResource,
    ReferenceExchangeResource,
    StorageResource,
    secret_config,
)
from helios_pipeline.defs.signals import build_signal_assets
from helios_pipeline.quality.stream_watch import StreamThresholds
from helios_pipeline.settings import Settings

OHLCV_1M_JOB = "ohlcv_1m_job"
FRESHNESS_JOB = "ohlcv_1m_freshness_job"
QUALITY_REPORT_JOB = "data_quality_report_job"
DIVERGENCE_JOB = "cross_exchange_divergence_job"
TICKERS_JOB = "ticker_snapshots_job"
SIGNALS_JOB = "signals_job"


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """All Dagster definitions for ``settings`` (default: read from ``HELIOS_*`` variables)."""
    settings = settings or Settings.from_env()
    partitions = symbol_day_partitions(settings.start_date)
    return dg.Definitions.merge(
        _batch_defs(settings, partitions),
        _quality_defs(settings),
        _cross_exchange_defs(settings, partitions),
        _realtime_defs(settings),
        _signal_defs(partitions),
        _archive_defs(settings),
        # HELIOS_DAGSTER_EXECUTOR: None (multiprocess) keeps Dagster's default executor.
        dg.Definitions(resources=_resources(settings),
                       executor=executor_for(settings.dagster_executor)),
        # The InfluxDB mirror is optional: it exists only when HELIOS_INFLUX_URL is set.
        *([build_influx_defs(settings)] if settings.influx_url else []),
    )


def _resources(settings: Settings) -> dict[str, object]:
    return {
        # Runs are batch work: they yield the weight budget to the live stream above a share.
        "exchange": ExchangeResource.from_config(settings.exchange_config(batch=True)),
        "reference_exchange": ReferenceExchangeResource.from_config(
            settings.reference_exchange_config(batch=True)),
        "storage": StorageResource(data_dir=str(settings.data_dir),
                                   storage_format=settings.storage_format,
                                   keep_versions=settings.keep_versions),
        "market_data": MarketDataQueryResource(
            data_dir=str(settings.data_dir), exchange=settings.exchange,
            redis_url=secret_config("HELIOS_REDIS_URL", settings.redis_url),
            hot_retention_minutes=settings.hot_retention_minutes,
            keep_versions=settings.keep_versions, start_date=settings.start_date,
            archive_url=secret_config("HELIOS_ARCHIVE_URL", settings.archive_url)),
        "candle_io_manager": CandleIOManager(
            data_dir=str(settings.data_dir), storage_format=settings.storage_format,
            exchange=settings.exchange,
            archive_url=secret_config("HELIOS_ARCHIVE_URL", settings.archive_url)),
        "alerts": AlertsResource(
            webhook_url=secret_config("HELIOS_ALERT_WEBHOOK_URL", settings.alert_webhook_url)),
        "archive": ArchiveResource(
            exchange=settings.exchange,
            archive_url=secret_config("HELIOS_ARCHIVE_URL", settings.archive_url),
            warm_days=settings.warm_days),
        "realtime": RealtimeMarketDataResource(
            redis_url=secret_config("HELIOS_REDIS_URL", settings.redis_url) or settings.redis_url,
            exchange=settings.exchange,
            retention_minutes=settings.hot_retention_minutes,
        ),
    }


def _batch_defs(settings: Settings, partitions: dg.MultiPartitionsDefinition) -> dg.Definitions:
    """Candles from the exchange(s), their checks, the daily schedule and self-healing."""
    candles = build_candle_assets(partitions, settings.exchange, settings.validation)
    reference = build_reference_candles(partitions, settings.validation)
    freshness = build_freshness_check(settings.freshness_deadline_hour)
    hourly_check = dg.AssetSelection.checks(freshness)  # own schedule, not per partition
    job = dg.define_asset_job(
        OHLCV_1M_JOB, selection=dg.AssetSelection.assets(candles, reference) - hourly_check,
        partitions_def=partitions,
    )
    freshness_job = dg.define_asset_job(FRESHNESS_JOB, selection=hourly_check)
    backfill = build_backfill_job(settings.exchange, settings.validation)
    return dg.Definitions(
        assets=[candles, reference],
        asset_checks=[freshness],
        jobs=[job, freshness_job, backfill],
        schedules=[build_daily_schedule(OHLCV_1M_JOB), build_freshness_schedule(FRESHNESS_JOB)],
        sensors=[build_symbols_sensor(settings.symbols), build_self_healing_sensor(OHLCV_1M_JOB)],
    )


def _quality_defs(settings: Settings) -> dg.Definitions:
    """The daily data-quality report and its schedule."""
    report = build_quality_report_asset(settings.start_date)
    job = dg.define_asset_job(QUALITY_REPORT_JOB, selection=[report],
                              partitions_def=report.partitions_def)
    return dg.Definitions(assets=[report], jobs=[job],
                          schedules=[build_report_schedule(QUALITY_REPORT_JOB)])


def _cross_exchange_defs(
    settings: Settings, partitions: dg.MultiPartitionsDefinition
) -> dg.Definitions:
    """The divergence view between the two venues, and re-examination of price moves.

    The view is built once the reference candles exist; quarantined price moves are asked of
    the reference venue again when its candles land (``defs.reexamine``).
    """
    divergence = build_divergence_asset(partitions, settings.validation.max_divergence)
    job = dg.define_asset_job(DIVERGENCE_JOB, selection=[divergence], partitions_def=partitions)
    reexamine = build_reexamine_job(partitions, settings.exchange, settings.validation)
    return dg.Definitions(assets=[divergence], jobs=[job, reexamine],
                          sensors=[build_reexamine_sensor(partitions)])


def _realtime_defs(settings: Settings) -> dg.Definitions:
    """Hourly ticker files from the hot tier, their live-candle check and stream health."""
    tickers = ticker_partitions(settings.ticker_start_date)
    snapshots = build_ticker_snapshots(tickers)
    live_candles = build_live_candles_check(tickers)
    job = dg.define_asset_job(
        TICKERS_JOB, partitions_def=tickers,
        selection=dg.AssetSelection.assets(snapshots) | dg.AssetSelection.checks(live_candles),
    )
    return dg.Definitions(
        assets=[snapshots], asset_checks=[live_candles], jobs=[job],
        sensors=[build_ticker_snapshots_sensor(tickers, TICKERS_JOB),
                 build_stream_health_sensor(StreamThresholds(settings.stream_alert_lag_ms,
                                                             settings.stream_alert_shed))],
    )


def _signal_defs(partitions: dg.MultiPartitionsDefinition) -> dg.Definitions:
    """Indicators, market regime and grid levels downstream of the candles, with their checks."""
    assets, checks = build_signal_assets(partitions)
    job = dg.define_asset_job(
        SIGNALS_JOB, partitions_def=partitions,
        selection=dg.AssetSelection.assets(*assets) | dg.AssetSelection.checks(*checks),
    )
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[job])


def _archive_defs(settings: Settings) -> dg.Definitions:
    """The cold tier: monthly archive partitions and the daily tier-movement schedule."""
    archive = build_archive_asset(symbol_month_partitions(settings.start_date))
    job = dg.define_asset_job(ARCHIVE_JOB, selection=[archive],
                              partitions_def=archive.partitions_def)
    return dg.Definitions(
        assets=[archive], jobs=[job],
        schedules=[build_archive_schedule(ARCHIVE_JOB, settings.start_date, settings.warm_days)])
