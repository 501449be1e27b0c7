"""Candle asset checks: per-partition gap results, exchange consistency, freshness."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.build import FRESHNESS_JOB, build_defs
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer

GAP_CHECK = dg.AssetCheckKey(dg.AssetKey("ohlcv_1m"), "ohlcv_1m_gap_check")
CONSISTENCY_CHECK = dg.AssetCheckKey(dg.AssetKey("ohlcv_1m"), "ohlcv_1m_exchange_consistency_check")


def latest_by_partition(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> dict[str, str]:
    """Latest evaluated status of a check per partition (PLANNED markers ignored)."""
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=1000)
    latest: dict[str, str] = {}
    for record in sorted(history, key=lambda r: r.id):
        if record.partition is not None and record.status.value != "PLANNED":
            latest[record.partition] = record.status.value
    return latest


def test_gap_check_fails_only_the_partition_with_a_gap(
    sim: SimExchangeServer, settings: Settings
) -> None:
    sim.set_faults("missing:symbol=BTCUSDT,start=2024-05-02T10:00,minutes=30")
    with dg.instance_for_test() as instance:
        outcome = run_backfill(["BTC/USDT"], date(2024, 5, 1), date(2024, 5, 3), instance, settings)
        assert outcome.success, outcome.failures
        assert latest_by_partition(instance, GAP_CHECK) == {
            "2024-05-01|BTCUSDT": "SUCCEEDED",
            "2024-05-02|BTCUSDT": "FAILED",
            "2024-05-03|BTCUSDT": "SUCCEEDED",
        }
        # one consistency result per day, covering every derived timeframe
        assert latest_by_partition(instance, CONSISTENCY_CHECK) == {
            f"2024-05-0{day}|BTCUSDT": "SUCCEEDED" for day in (1, 2, 3)}
        history = instance.event_log_storage.get_asset_check_execution_history(
            CONSISTENCY_CHECK, limit=10)
        metadata = history[0].event.dagster_event.event_specific_data.metadata  # type: ignore[union-attr]
        assert metadata["timeframes"].value == "5m, 15m, 1h, 4h, 1d"
        assert (metadata["compared_5m"].value, metadata["compared_1d"].value) == (288, 1)
        assert metadata["compared"].value == 288 + 96 + 24 + 6 + 1
        assert metadata["mismatches"].value == 0


def test_single_partition_run_attributes_the_check_to_its_partition(settings: Settings) -> None:
    with dg.instance_for_test() as instance:
        run_backfill(["ETH/USDT"], date(2024, 5, 4), date(2024, 5, 4), instance, settings)
        record = instance.event_log_storage.get_asset_check_execution_history(GAP_CHECK, limit=1)[0]
        assert (record.partition, record.status.value) == ("2024-05-04|ETHUSDT", "SUCCEEDED")
        metadata = record.event.dagster_event.event_specific_data.metadata  # type: ignore[union-attr]
        assert metadata["missing_minutes"].value == 0


def test_freshness_check_names_symbols_missing_yesterday(settings: Settings) -> None:
    yesterday = (datetime.now(tz=UTC) - timedelta(days=1)).date()
    settings = replace(settings, freshness_deadline_hour=0)
    defs = build_defs(settings)
    with dg.instance_for_test() as instance:
        run_backfill(["BTC/USDT"], yesterday, yesterday, instance, settings)
        instance.add_dynamic_partitions("symbols", ["ETHUSDT"])
        result = defs.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
        (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["missing"].value == "ETHUSDT"
