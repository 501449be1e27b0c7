"""``build_defs()``: every asset, resource, job, schedule and sensor, configured from settings."""

from __future__ import annotations

import dagster as dg

from helios_pipeline.defs.assets import build_candle_assets
from helios_pipeline.defs.automation import build_daily_schedule, build_symbols_sensor
from helios_pipeline.defs.partitions import symbol_day_partitions
from helios_pipeline.defs.resources import ExchangeResource, StorageResource
from helios_pipeline.settings import Settings

OHLCV_1M_JOB = "ohlcv_1m_job"


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """All Dagster definitions for ``settings`` (default: read from ``HELIOS_*`` variables)."""
    settings = settings or Settings.from_env()
    partitions = symbol_day_partitions(settings.start_date)
    candles = build_candle_assets(partitions, settings.exchange)
    job = dg.define_asset_job(OHLCV_1M_JOB, selection=[candles], partitions_def=partitions)
    return dg.Definitions(
        assets=[candles],
        jobs=[job],
        schedules=[build_daily_schedule(job)],
        sensors=[build_symbols_sensor(settings.symbols)],
        resources={
            "exchange": ExchangeResource.from_settings(settings),
            "storage": StorageResource.from_settings(settings),
        },
    )
