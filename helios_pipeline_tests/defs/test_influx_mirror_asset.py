"""influx_mirror: candles and hot-tier ticks reach a real InfluxDB once, even across an outage."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import dagster as dg

from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.influx import INFLUX_MIRROR, INFLUX_MIRROR_JOB, OUTBOX_CHECK
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline_tests.influx_data import days_ago, real_candles
from helios_pipeline_tests.influx_server import InfluxServer


def store_day(settings: Settings, days: int) -> int:
    """Store (and catalogue) a day of real 1m candles ``days`` ago; returns its row count."""
    day_start = days_ago(days)
    candles = real_candles(shift_to=day_start)
    stored = CandleStore(settings.data_dir).store("BTC/USDT", Timeframe.M1, day_start.date(),
                                                  candles)
    MetadataStore(metadata_path(settings.data_dir)).record_partition(
        "binance", "BTC/USDT", Timeframe.M1, day_start.date(), stored, "test")
    return len(candles)


def seed_trades(redis_url: str, count: int) -> None:
    start_ms = datetime_to_ms(days_ago(0))
    ticks = [Tick("binance", "ETH/USDT", "trade", start_ms + i, (start_ms + i) * 1000 + 5,
                  price=Decimal("3050.01") + i, qty=Decimal("0.5"), event_id=i,
                  seq=(start_ms + i) * 1000 + 5) for i in range(count)]
    hot = HotStore(redis_url, retention_ms=48 * 3_600_000)
    hot.append(ticks)
    hot.close()


def run_mirror(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(INFLUX_MIRROR_JOB).execute_in_process(instance=instance)
    assert result.success  # an absent InfluxDB never fails the run
    return result


def outbox_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == OUTBOX_CHECK
    return evaluation


def test_mirror_exists_only_with_an_influx_url(settings: Settings) -> None:
    keys = build_defs(settings).resolve_asset_graph().get_all_asset_keys()
    assert INFLUX_MIRROR not in keys
    on = build_defs(replace(settings, influx_url="http://127.0.0.1:1"))
    assert INFLUX_MIRROR in on.resolve_asset_graph().get_all_asset_keys()
    assert on.resolve_schedule_def("influx_mirror_schedule").cron_schedule == "*/5 * * * *"


def test_candles_and_ticks_arrive_once_across_an_outage(
        settings: Settings, influx: InfluxServer, redis_url: str) -> None:
    database = influx.fresh_database()
    settings = replace(settings, influx_url=influx.url, influx_database=database,
                       redis_url=redis_url, hot_retention_minutes=48 * 60)
    defs = build_defs(settings)
    first = store_day(settings, 2)
    seed_trades(redis_url, 50)
    with dg.instance_for_test() as instance:
        result = run_mirror(defs, instance)
        assert outbox_check(result).passed
        assert influx.count(database, "ohlcv") == first
        assert influx.count(database, "trade", "price") == 50
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["queued_candle_points"].value == first

        again = run_mirror(defs, instance)  # nothing new: nothing queued, nothing doubled
        meta = again.get_asset_materialization_events()[0].materialization.metadata
        assert (meta["queued_candle_points"].value, meta["queued_tick_points"].value) == (0, 0)

        influx.stop()
        second = store_day(settings, 1)
        down = run_mirror(defs, instance)
        check = outbox_check(down)
        assert not check.passed
        assert check.metadata["pending_points"].value == second

        influx.start()
        up = run_mirror(defs, instance)
        assert outbox_check(up).passed
    assert influx.count(database, "ohlcv") == first + second
    assert influx.count(database, "trade", "price") == 50
