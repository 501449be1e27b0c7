"""The README's research snippet runs as written and loads the candles it materialised."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.conftest import REPO_ROOT

SNIPPET = re.compile(r"<!-- research-snippet.*?-->\s*```python\n(.*?)```", re.DOTALL)


def test_research_snippet_runs(tmp_path: Path, sim: SimExchangeServer) -> None:
    match = SNIPPET.search((REPO_ROOT / "README.md").read_text())
    assert match, "README lost its research snippet"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    env = {"DAGSTER_HOME": str(home), "HELIOS_DATA_DIR": str(tmp_path / "data"),
           "HELIOS_EXCHANGE_URL": sim.base_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", match.group(1)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    counts = next(line.split() for line in done.stdout.splitlines() if line.startswith("count"))
    assert [float(c) for c in counts[1:]] == [1440.0] * 5  # a full day, five columns
    assert "hours 24 2024-05-01 00:00:00+00:00" in done.stdout
    files = sorted((tmp_path / "data" / "market_data" / "BTCUSDT").rglob("ohlcv_1m_*.parquet"))
    assert [f.name for f in files] == ["ohlcv_1m_20240501.parquet", "ohlcv_1m_20240502.parquet",
                                       "ohlcv_1m_20240503.parquet", "ohlcv_1m_20240504.parquet"]
    derived = sorted((tmp_path / "data" / "market_data" / "BTCUSDT").rglob("ohlcv_1h_*.parquet"))
    assert "ohlcv_1h_20240504.parquet" in [f.name for f in derived]  # dg.materialize derived it
