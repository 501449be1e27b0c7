"""A backfill run whose step runs on a real Celery worker (``HELIOS_DAGSTER_EXECUTOR=celery``).

The shipped ``deploy/celery/dagster.yaml`` is the instance (on a fresh database of the machine's
PostgreSQL), ``deploy/celery/celery.yaml`` the worker's config, the machine's RabbitMQ
(127.0.0.1:5672, guest) the broker; the worker is started with ``dagster-celery worker start`` as
the docs say, and the step fetches from the simulated exchange.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.executors import BROKER_ENV
from helios_pipeline.defs.history import BACKFILL_JOB
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.integration.test_deploy_configs import pg_url

ROOT = Path(__file__).resolve().parents[2]
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
DAY = (datetime.now(tz=UTC) - timedelta(days=2)).date()
__all__ = ["pg_url"]  # the fixture, shared with the config tests


def celery_backfill_job() -> dg.JobDefinition:
    """The backfill job as a worker rebuilds it: from the ``HELIOS_*`` environment."""
    return build_defs(Settings.from_env()).resolve_job_def(BACKFILL_JOB)


@pytest.fixture
def celery_env(tmp_path: Path, pg_url: str, sim: SimExchangeServer,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """Dagster home with the shipped Celery instance and the HELIOS_* env of test and worker."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ does not answer at 127.0.0.1:5672 ({exc}); scripts/test starts it.")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "celery" / "dagster.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": str(home), "HELIOS_DAGSTER_EXECUTOR": "celery",
                        BROKER_ENV: BROKER, "HELIOS_DAGSTER_LOG_DIR": str(tmp_path / "logs"),
                        "HELIOS_DATA_DIR": str(tmp_path / "data"),
                        "HELIOS_EXCHANGE_URL": sim.base_url, "HELIOS_START_DATE": "2024-01-01",
                        "HELIOS_SYMBOLS": "BTC/USDT"}.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture
def worker(celery_env: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``dagster-celery worker start`` in the foreground, in its own process group."""
    cli = Path(sys.executable).with_name("dagster-celery")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [str(cli), "worker", "start", "-y", str(ROOT / "deploy" / "celery" / "celery.yaml"),
         "-A", "dagster_celery.app", "--", "--concurrency=1", "--pool=solo"],
        env=env, cwd=celery_env.parent, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=(celery_env.parent / "worker.log").open("wb"))
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_backfill_step_runs_on_a_celery_worker(celery_env: Path,
                                              worker: subprocess.Popen[bytes]) -> None:
    run_config = {"ops": {"backfill_candles": {"config": {
        "symbol": "BTC/USDT", "start": str(DAY - timedelta(days=1)), "end": str(DAY)}}}}
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(celery_backfill_job), instance,
                                run_config=run_config)
        log = (celery_env.parent / "worker.log").read_text(errors="replace")
        assert worker.poll() is None, log[-3000:]
        assert result.success, log[-3000:]
        assert result.dagster_run.run_config.get("execution") is None  # bound in code, not run
        materialized = instance.get_materialized_partitions(dg.AssetKey("ohlcv_1m"))
        assert {f"{DAY}|BTCUSDT", f"{DAY - timedelta(days=1)}|BTCUSDT"} <= materialized
    # The step ran in the worker, not here: its events come from another process, and the
    # worker's log shows the Celery task and the step.
    step_pids = {event.pid for event in result.all_events
                 if event.step_key == "backfill_candles" and event.is_step_start}
    assert step_pids
    assert os.getpid() not in step_pids
    log = (celery_env.parent / "worker.log").read_text(errors="replace")
    assert "Task execute_plan[" in log
    assert f"{result.run_id} - {step_pids.pop()} - backfill_candles - STEP_START" in log
