"""A crash quarantined before the reference venue had data is restored when its candles land.

The primary venue and a second Binance-format venue (``binanceus``) replay the real 2020-03-12
BTCUSDT day, both with a 30% one-minute crash at 12:00. The backfill runs before a reference venue
is configured, so the seed rule quarantines the crash. Then the reference venue is configured and
``reference_ohlcv_1m`` is materialised for the day: ``reexamine_sensor`` asks for one
``reexamine_job`` run, which restores the crash (flagged, with evidence) and rebuilds 5m..1d.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from helios_pipeline.batch.confirm import CONFIRMED_MOVE
from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.checks import SCHEMA_CHECK
from helios_pipeline.defs.cross import REFERENCE_OHLCV_1M
from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.reexamine import REEXAMINE_JOB
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.decisions import DecisionStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline_tests.defs.conftest import CRASH_DAY as DAY

PARTITION = f"{DAY}|BTCUSDT"
CRASH_AT = datetime(2020, 3, 12, 12, tzinfo=UTC)


def tick(instance: dg.DagsterInstance, defs: dg.Definitions, cursor: str | None
         ) -> tuple[list[dg.RunRequest], str | None]:
    sensor = defs.resolve_sensor_def("reexamine_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor,
                                 resources=defs.resources) as context:
        result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or []), result.cursor


def materialise_reference(instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[REFERENCE_OHLCV_1M],
                                  partition_key=PARTITION).success


def test_the_reference_landing_later_restores_a_quarantined_crash(
    crashing_venues: tuple[SimExchangeServer, SimExchangeServer], tmp_path: Path
) -> None:
    primary, reference = crashing_venues
    alone = replace(Settings.from_env({}), data_dir=tmp_path / "data",
                    exchange_url=primary.base_url, symbols=("BTC/USDT",),
                    start_date="2020-01-01", request_timeout_s=5.0)
    paired = replace(alone, reference_exchange="binanceus",
                     reference_exchange_url=reference.base_url)
    candles = CandleStore(alone.data_dir)
    quarantine = QuarantineStore(alone.data_dir)
    with dg.instance_for_test() as instance:
        assert run_backfill(["BTC/USDT"], DAY, DAY, instance, alone).success
        [held] = [r for r in quarantine.load_partition("BTC/USDT", Timeframe.M1, DAY)
                  if r.timestamp_ms == int(CRASH_AT.timestamp() * 1000)]
        assert "price_jump" in held.rules
        assert CRASH_AT not in {c.timestamp for c in candles.load("BTC/USDT", Timeframe.M1, DAY)}

        defs = build_defs(paired)
        requests, cursor = tick(instance, defs, None)
        assert requests == []  # the reference venue has not been materialised yet
        materialise_reference(instance, defs)
        requests, cursor = tick(instance, defs, cursor)
        assert [r.partition_key for r in requests] == [PARTITION]

        job = defs.resolve_job_def(REEXAMINE_JOB)
        run = job.execute_in_process(instance=instance, partition_key=PARTITION)
        assert run.success
        [restored] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=OHLCV_1M, asset_partitions=[PARTITION]),
            limit=1).records
        assert restored.run_id == run.run_id
        metadata = restored.asset_materialization.metadata  # type: ignore[union-attr]
        assert str(metadata["restored"].value).startswith("12:00")
        assert metadata["confirmed_by"].value == "binanceus"
        [schema] = instance.event_log_storage.get_asset_check_execution_history(SCHEMA_CHECK,
                                                                                limit=1)
        assert (schema.run_id, schema.status.value) == (run.run_id, "SUCCEEDED")

        # Nothing is left to re-examine: a new reference materialisation launches nothing.
        materialise_reference(instance, defs)
        again, _ = tick(instance, defs, cursor)
        assert again == []

    [crash] = [c for c in candles.load("BTC/USDT", Timeframe.M1, DAY) if c.timestamp == CRASH_AT]
    assert CONFIRMED_MOVE in crash.anomaly_flags
    [daily] = candles.load("BTC/USDT", Timeframe.D1, DAY)
    assert daily.low == crash.low
    [decision] = DecisionStore(metadata_path(alone.data_dir)).decisions()
    assert (decision.decision, decision.reference) == ("confirmed", "binanceus")
    assert decision.evidence["reexamined"] is True
