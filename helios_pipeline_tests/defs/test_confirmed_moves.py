"""Through Dagster: a crash both venues print is materialised, flagged and passes its checks.

The primary venue and a second Binance-format venue (``HELIOS_REFERENCE_EXCHANGE=binanceus``)
replay the real 2020-03-12 BTCUSDT day, both with a 30% one-minute crash at 12:00.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from helios_pipeline.batch.confirm import CONFIRMED_MOVE
from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.checks import EXPECTATIONS_CHECK
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.decisions import DecisionStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline_tests.defs.conftest import CRASH_DAY as DAY


def test_a_confirmed_crash_is_materialised_and_its_checks_pass(
    crashing_venues: tuple[SimExchangeServer, SimExchangeServer], tmp_path: Path
) -> None:
    primary, reference = crashing_venues
    settings = replace(Settings.from_env({}), data_dir=tmp_path / "data",
                       exchange_url=primary.base_url, symbols=("BTC/USDT",),
                       start_date="2020-01-01", request_timeout_s=5.0,
                       reference_exchange="binanceus", reference_exchange_url=reference.base_url)
    with dg.instance_for_test() as instance:
        outcome = run_backfill(["BTC/USDT"], DAY, DAY, instance, settings)
        assert outcome.success
        [check] = instance.event_log_storage.get_asset_check_execution_history(
            EXPECTATIONS_CHECK, limit=5)
        evaluation = check.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    assert evaluation.passed
    assert f"{CONFIRMED_MOVE} 1" in evaluation.metadata["by_rule"].value
    stored = CandleStore(settings.data_dir).load("BTC/USDT", Timeframe.M1, DAY)
    [crash] = [c for c in stored if c.timestamp == datetime(2020, 3, 12, 12, tzinfo=UTC)]
    assert CONFIRMED_MOVE in crash.anomaly_flags
    [daily] = CandleStore(settings.data_dir).load("BTC/USDT", Timeframe.D1, DAY)
    assert daily.low == crash.low
    [decision] = DecisionStore(metadata_path(settings.data_dir)).decisions()
    assert (decision.decision, decision.reference) == ("confirmed", "binanceus")
