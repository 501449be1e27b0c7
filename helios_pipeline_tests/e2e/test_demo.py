"""The README's first command, end to end: ``scripts/demo`` on the simulated exchange."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.conftest import REPO_ROOT


def test_demo_command_leaves_daily_files_and_catalog_rows(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    data = tmp_path / "data"
    env = {**os.environ, "DAGSTER_HOME": str(home), "HELIOS_DATA_DIR": str(data)}
    env.pop("HELIOS_EXCHANGE_URL", None)
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "demo"), "--days", "2"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ohlcv_1m partitions" in done.stdout
    assert "helios ui" in done.stdout

    yesterday = (datetime.now(tz=UTC) - timedelta(days=1)).date()
    files = sorted((data / "market_data").rglob("ohlcv_1m_*.parquet"))
    assert len(files) == 6  # 3 symbols x 2 days
    expected = data / "market_data" / "BTCUSDT" / f"{yesterday:%Y}" / f"{yesterday:%m}"
    assert expected / f"ohlcv_1m_{yesterday:%Y%m%d}.parquet" in files
    assert all(pq.read_metadata(f).num_rows == 1440 for f in files)

    records = MetadataStore(data / "metadata.sqlite").list_partitions()
    assert len(records) == 6
    assert {r.rows for r in records} == {1440}
    assert {r.missing_minutes for r in records} == {0}
