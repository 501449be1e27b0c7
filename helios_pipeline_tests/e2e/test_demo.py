"""The README's first command, end to end: ``scripts/demo`` on the simulated exchange."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.conftest import REPO_ROOT


def demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``scripts/demo --days 2`` with its Dagster instance and data root under ``tmp_path``."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "HELIOS_DATA_DIR": str(tmp_path / "data")}
    env.pop("HELIOS_EXCHANGE_URL", None)
    return subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "demo"), "--days", "2"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


def test_demo_runs_twice_into_one_instance_and_changes_nothing(tmp_path: Path) -> None:
    first = demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = file_hashes(tmp_path / "data" / "market_data")
    second = demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert file_hashes(tmp_path / "data" / "market_data") == before
    records = MetadataStore(tmp_path / "data" / "metadata.sqlite").list_partitions()
    assert {r.version for r in records} == {1}  # the same bytes: no new catalog versions
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_run_records()
        assert runs
        failed = [r.dagster_run.job_name for r in runs
                  if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
    assert failed == []  # the UI opened after the demo shows no red run


def test_demo_command_leaves_daily_files_and_catalog_rows(tmp_path: Path) -> None:
    done = demo(tmp_path)
    data = tmp_path / "data"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ohlcv_1m partitions" in done.stdout
    assert "helios ui" in done.stdout

    yesterday = (datetime.now(tz=UTC) - timedelta(days=1)).date()
    every = sorted((data / "market_data").glob("*/*/*/ohlcv_1m_*.parquet"))
    files = [f for f in every if not f.parts[-4].startswith("okx.")]  # okx.*: second venue
    assert len(files) == 6  # 3 symbols x 2 days
    assert len(every) == 12
    expected = data / "market_data" / "BTCUSDT" / f"{yesterday:%Y}" / f"{yesterday:%m}"
    assert expected / f"ohlcv_1m_{yesterday:%Y%m%d}.parquet" in files
    rows = {f.parent.parent.parent.name + f.stem[-8:]: pq.read_metadata(f).num_rows
            for f in files}
    eth_yesterday = f"ETHUSDT{yesterday:%Y%m%d}"
    # ETH yesterday: a 30-minute gap, a spike and a broken candle quarantined: 1440 - 32.
    assert rows.pop(eth_yesterday) == 1408
    assert set(rows.values()) == {1440}

    records = MetadataStore(data / "metadata.sqlite").list_partitions(timeframe=Timeframe.M1)
    assert len(records) == 6 * 2  # both venues
    assert sorted(r.missing_minutes for r in records)[-1] == 30
    assert f"Quarantined ETH/USDT {yesterday:%Y-%m-%d} 12:00: price_jump" in done.stdout
    assert f"Quarantined ETH/USDT {yesterday:%Y-%m-%d} 13:00: ohlc_inconsistent" in done.stdout
    reports = data / "system" / "data_quality_reports"
    report = reports / f"data_quality_report_{yesterday:%Y%m%d}.html"
    html = report.read_text()
    # Piped output keeps whole lines (no wrapping at 80 columns): paths and specs stay copyable.
    lines = done.stdout.splitlines()
    assert f"Report:   {report.resolve()}" in lines
    assert any(line.startswith("   Binance injects: http429:count=1") and
               line.endswith(f"missing:symbol=ETHUSDT,start={yesterday}T15:00,minutes=30")
               for line in lines)
    # Request faults are counted per request; each data fault is named once.
    assert "  Request faults, absorbed by retries: http429 x1, http5xx x2" in lines
    for caught in ("price_jump", "ohlc_inconsistent", "30 min", "okx"):
        assert caught in html, caught
