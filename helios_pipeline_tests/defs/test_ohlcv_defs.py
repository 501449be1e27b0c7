"""Dagster: definitions load, one partition materialises, backfills follow the policy."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import dagster as dg

from helios_pipeline.defs.assets import MAX_PARTITIONS_PER_RUN
from helios_pipeline.defs.backfill import plan_backfill, run_backfill
from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.checks import GAP_CHECK
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path


def test_definitions_load_and_validate(settings: Settings) -> None:
    defs = build_defs(settings)
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("ohlcv_1m_job") is not None
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    derived = {"ohlcv_5m", "ohlcv_15m", "ohlcv_1h", "ohlcv_4h", "ohlcv_1d"}
    assert {"ohlcv_1m", *derived} <= assets
    for name in derived:  # lineage: every derived timeframe is built from ohlcv_1m
        assert graph.get(dg.AssetKey(name)).parent_keys == {dg.AssetKey("ohlcv_1m")}
    spec = defs.resolve_assets_def("ohlcv_1m")
    assert spec.backfill_policy == dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN)


def test_materialise_one_partition(settings: Settings) -> None:
    day = date(2024, 3, 5)
    with dg.instance_for_test() as instance:
        outcome = run_backfill(["BTC/USDT"], day, day, instance, settings)
        assert outcome.success, outcome.failures
        events = instance.fetch_materializations(dg.AssetKey("ohlcv_1m"), limit=10).records
        assert [e.partition_key for e in events] == ["2024-03-05|BTCUSDT"]
        metadata = events[0].asset_materialization.metadata  # type: ignore[union-attr]
        assert metadata["rows"].value == 1440
        assert metadata["missing_minutes"].value == 0
    store = CandleStore(settings.data_dir)
    candles = store.load("BTC/USDT", Timeframe.M1, day)
    assert len(candles) == 1440
    assert candles[0].timestamp == datetime(2024, 3, 5, tzinfo=UTC)
    rows = {tf: len(store.load("BTC/USDT", tf, day)) for tf in Timeframe}
    assert rows == {Timeframe.M1: 1440, Timeframe.M5: 288, Timeframe.M15: 96, Timeframe.H1: 24,
                    Timeframe.H4: 6, Timeframe.D1: 1}
    (daily,) = store.load("BTC/USDT", Timeframe.D1, day)
    assert daily.volume == sum((c.volume for c in candles), start=daily.volume * 0)
    assert daily.high == max(c.high for c in candles)
    record = MetadataStore(metadata_path(settings.data_dir)).latest_partition(
        "binance", "BTC/USDT", Timeframe.M1, day
    )
    assert record is not None
    assert (record.rows, record.missing_minutes, record.version) == (1440, 0, 1)


def test_a_backfill_runs_a_month_per_run_and_can_run_again(settings: Settings) -> None:
    """A range twice into one instance: no hand-written tags, one check result per partition."""
    start, end = date(2024, 1, 1), date(2024, 2, 9)  # 40 days
    symbols = ["BTC/USDT", "ETH/USDT"]
    plan = plan_backfill(symbols, start, end)
    assert [len(p.days) for p in plan] == [31, 9, 31, 9]
    with dg.instance_for_test() as instance:
        for attempt in (1, 2):
            outcome = run_backfill(symbols, start, end, instance, settings)
            assert outcome.success, outcome.failures
            runs = instance.get_runs()
            assert len(runs) == 4 * attempt  # 80 partitions, not 80 runs
            assert not any(tag.startswith("helios/") or "partition" in tag
                           for r in runs for tag in r.tags)
        done = instance.get_materialized_partitions(dg.AssetKey("ohlcv_1m"))
        assert Counter(key.split("|")[1] for key in done) == {"BTCUSDT": 40, "ETHUSDT": 40}
        gap_checks = instance.event_log_storage.get_asset_check_execution_history(
            GAP_CHECK, limit=1000)
        assert Counter(r.partition for r in gap_checks) == dict.fromkeys(done, 2)
        assert {r.status.value for r in gap_checks} == {"SUCCEEDED"}
    versions = {r.version for r in MetadataStore(metadata_path(settings.data_dir))
                .list_partitions()}
    assert versions == {1}  # the second run changed no bytes, so no new catalog versions


def test_a_ui_backfill_covers_a_month_per_run() -> None:
    """The policy Dagster's backfill daemon follows when a range is launched from the UI."""
    defs = build_defs(Settings.from_env({}))
    policy = defs.resolve_assets_def(dg.AssetKey("ohlcv_1m")).backfill_policy
    assert policy is not None
    assert policy.max_partitions_per_run == MAX_PARTITIONS_PER_RUN == 31


def test_daily_schedule_requests_yesterday_for_every_symbol(settings: Settings) -> None:
    defs = build_defs(settings)
    schedule = defs.resolve_schedule_def("ohlcv_1m_daily_schedule")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 6, 2, 0, 10, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert sorted(str(r.partition_key) for r in requests) == [
        "2024-06-01|BTCUSDT",
        "2024-06-01|ETHUSDT",
    ]


def test_symbols_sensor_adds_configured_symbols(settings: Settings) -> None:
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("symbol_partitions_sensor")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT"])
        context = dg.build_sensor_context(
            instance=instance, repository_def=defs.get_repository_def()
        )
        result = sensor.evaluate_tick(context)
        requests = result.dynamic_partitions_requests or []
    assert [list(r.partition_keys) for r in requests] == [["ETHUSDT"]]
