"""Schedules and sensors: register symbols, materialise yesterday, report, check freshness."""

from collections.abc import Iterator, Sequence
from datetime import timedelta

import dagster as dg

from helios_pipeline.defs.partitions import SYMBOLS, SymbolDay, registered_symbols
from helios_pipeline.domain.symbols import from_storage_id, to_storage_id


def build_symbols_sensor(symbols: Sequence[str]) -> dg.SensorDefinition:
    """Sensor that adds every configured symbol to the ``symbols`` dynamic partitions."""
    wanted = [to_storage_id(s) for s in symbols]

    @dg.sensor(
        name="symbol_partitions_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps the symbol partitions equal to HELIOS_SYMBOLS (adds new ones).",
    )
    def symbol_partitions_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        known = set(registered_symbols(context.instance))
        new = [s for s in wanted if s not in known]
        requests = [SYMBOLS.build_add_request(new)] if new else []
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return symbol_partitions_sensor


def build_daily_schedule(job_name: str) -> dg.ScheduleDefinition:
    """Every day at 00:10 UTC, one run per symbol for the day that just closed."""

    @dg.schedule(
        name="ohlcv_1m_daily_schedule",
        job_name=job_name,
        cron_schedule="10 0 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Materialises yesterday's ohlcv_1m partition for every symbol.",
    )
    def ohlcv_1m_daily_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        yesterday = (context.scheduled_execution_time - timedelta(days=1)).date()
        for storage_id in registered_symbols(context.instance):
            key = SymbolDay(from_storage_id(storage_id), yesterday).key
            yield dg.RunRequest(run_key=str(key), partition_key=key)

    return ohlcv_1m_daily_schedule


def build_report_schedule(job_name: str) -> dg.ScheduleDefinition:
    """Every day at 00:40 UTC (after the candles), yesterday's ``data_quality_report``."""

    @dg.schedule(
        name="data_quality_report_schedule", job_name=job_name, cron_schedule="40 0 * * *",
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def data_quality_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        return dg.RunRequest(run_key=yesterday, partition_key=yesterday)

    return data_quality_report_schedule


def build_freshness_schedule(job_name: str) -> dg.ScheduleDefinition:
    """Every hour at :05, the ``ohlcv_1m_freshness_check``."""
    return dg.ScheduleDefinition(
        name="ohlcv_1m_freshness_schedule", job_name=job_name, cron_schedule="5 * * * *",
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    )
