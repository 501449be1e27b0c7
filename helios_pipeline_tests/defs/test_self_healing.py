"""Self-healing sensor: bounded re-fetches of gappy partitions, then an alert."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.build import OHLCV_1M_JOB, build_defs
from helios_pipeline.defs.healing import MAX_TRIES
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path

DAY = (datetime.now(tz=UTC) - timedelta(days=2)).date()


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None
         ) -> tuple[list[dg.RunRequest], str | None]:
    sensor = defs.resolve_sensor_def("self_healing_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as context:
        result = sensor(context)  # direct invocation: what the sensor function returns
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or []), result.cursor


def test_gap_that_heals_is_refetched_once(sim: SimExchangeServer, settings: Settings) -> None:
    sim.set_faults(f"missing:symbol=ETHUSDT,start={DAY}T10:00,minutes=5")
    defs = build_defs(settings)
    with dg.instance_for_test() as instance:
        assert run_backfill(["ETH/USDT"], DAY, DAY, instance, settings).success
        requests, cursor = tick(defs, instance, None)
        assert [str(r.partition_key) for r in requests] == [f"{DAY}|ETHUSDT"]
        sim.set_faults("")  # the exchange has the data again
        run = defs.resolve_job_def(OHLCV_1M_JOB).execute_in_process(
            instance=instance, partition_key=requests[0].partition_key
        )
        assert run.success
        requests, cursor = tick(defs, instance, cursor)
        assert requests == []
    record = MetadataStore(metadata_path(settings.data_dir)).latest_partition(
        "binance", "ETH/USDT", Timeframe.M1, DAY)
    assert record is not None
    assert (record.missing_minutes, record.version) == (0, 2)


def refetch(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> None:
    """What the daemon does with a request: run the job for that partition (and let it finish)."""
    result = defs.resolve_job_def(OHLCV_1M_JOB).execute_in_process(
        instance=instance, partition_key=request.partition_key, raise_on_error=False)
    assert result.success


def test_persistent_gap_stops_after_max_finished_tries_and_alerts(
    sim: SimExchangeServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    sim.set_faults(f"missing:symbol=BTCUSDT,start={DAY}T03:00,minutes=60")
    defs = build_defs(settings)
    with dg.instance_for_test() as instance:
        assert run_backfill(["BTC/USDT"], DAY, DAY, instance, settings).success
        cursor = None
        launched: list[str] = []
        for _ in range(MAX_TRIES):
            requests, cursor = tick(defs, instance, cursor)
            assert len(requests) == 1
            pending, cursor = tick(defs, instance, cursor)
            assert pending == []  # requested, not finished: nothing more for this partition
            refetch(defs, instance, requests[0])
            launched += [str(r.run_key) for r in requests]
        assert [key.rsplit("#", 1)[1] for key in launched] == ["1", "2", "3"]
        with caplog.at_level(logging.WARNING, logger="helios.quality"):
            requests, cursor = tick(defs, instance, cursor)
        assert requests == []
        assert "Gap persists after re-fetching" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="helios.quality"):
            requests, cursor = tick(defs, instance, cursor)
        assert requests == []
        assert caplog.text == ""  # alerted once, then left alone

        sim.set_faults("")  # the exchange has the minutes again: healed, the count ends
        assert run_backfill(["BTC/USDT"], DAY, DAY, instance, settings).success
        requests, cursor = tick(defs, instance, cursor)
        assert requests == []
        sim.set_faults(f"missing:symbol=BTCUSDT,start={DAY}T05:00,minutes=10")
        assert run_backfill(["BTC/USDT"], DAY, DAY, instance, settings).success
        requests, cursor = tick(defs, instance, cursor)  # broken again: a fresh count
        assert [str(r.run_key).rsplit("#", 1)[1] for r in requests] == ["1"]


def test_no_run_is_launched_while_the_exchange_does_not_answer(
    sim: SimExchangeServer, settings: Settings
) -> None:
    sim.set_faults(f"missing:symbol=ETHUSDT,start={DAY}T10:00,minutes=5")
    with dg.instance_for_test() as instance:
        assert run_backfill(["ETH/USDT"], DAY, DAY, instance, settings).success
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        down = build_defs(replace(settings, exchange_url=f"http://127.0.0.1:{port}",
                                  request_timeout_s=1.0))
        sensor = down.resolve_sensor_def("self_healing_sensor")
        with dg.build_sensor_context(instance=instance, resources=down.resources,
                                     repository_def=down.get_repository_def()) as context:
            result = sensor(context)
        assert isinstance(result, dg.SkipReason)
        assert "does not answer" in str(result.skip_message)
        assert json.loads(str(context.cursor))["unreachable"] is True
