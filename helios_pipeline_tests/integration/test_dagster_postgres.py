"""Dagster on PostgreSQL: the instance variant in ``deploy/dagster-postgres.yaml``, for real.

A backfill and a sensor tick run against the machine's PostgreSQL server (127.0.0.1:5432, started
by ``scripts/test`` when it is not running), in a database created for this test and dropped after.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.build import build_defs
from helios_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DAY = (datetime.now(tz=UTC) - timedelta(days=2)).date()


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A fresh, empty database on the local PostgreSQL server (conftest); dropped afterwards."""
    return postgres_database


@pytest.fixture
def postgres_instance(tmp_path: Path, postgres_url: str,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """The shipped ``deploy/dagster-postgres.yaml``, unchanged, as a Dagster home."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    # psycopg2 is the driver dagster-postgres installs; SQLAlchemy's URL names it.
    monkeypatch.setenv("HELIOS_DAGSTER_PG_URL",
                       postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    monkeypatch.chdir(tmp_path)  # the file's relative artifact paths land here
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_backfill_and_sensor_tick_on_postgres(postgres_instance: dg.DagsterInstance,
                                              postgres_url: str, settings: Settings) -> None:
    instance = postgres_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"

    outcome = run_backfill(["BTC/USDT"], DAY - timedelta(days=1), DAY, instance, settings)
    assert outcome.success, outcome.failures

    # The runs, their materialisations and check results are rows in PostgreSQL.
    runs = instance.get_runs()
    assert runs
    assert all(run.is_success for run in runs)
    key = f"{DAY}|BTCUSDT"
    materialized = instance.get_materialized_partitions(dg.AssetKey("ohlcv_1m"))
    assert key in materialized
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs")
        assert cur.fetchone() == (len(runs),)
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = "
                    "'ASSET_MATERIALIZATION' AND partition = %s", (key,))
        row = cur.fetchone()
        assert row is not None
        assert row[0] >= 1

    # A sensor tick reads the same instance: the partitions just stored have no gap to re-fetch.
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("self_healing_sensor")
    with dg.build_sensor_context(instance=instance, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert list(result.run_requests or []) == []
    assert result.cursor is not None

    # A second backfill of the same days re-runs cleanly on the same database.
    again = run_backfill(["BTC/USDT"], DAY - timedelta(days=1), DAY, instance, settings)
    assert again.success, again.failures
    assert len(instance.get_runs()) == 2 * len(runs)
