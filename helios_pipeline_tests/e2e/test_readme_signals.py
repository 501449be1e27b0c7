"""The README's signals snippet runs as written and prints indicators and a grid suggestion."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.conftest import REPO_ROOT

SNIPPET = re.compile(r"<!-- signals-snippet.*?-->\s*```python\n(.*?)```", re.DOTALL)


def test_signals_snippet_runs(tmp_path: Path, sim: SimExchangeServer) -> None:
    match = SNIPPET.search((REPO_ROOT / "README.md").read_text())
    assert match, "README lost its signals snippet"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    env = {"DAGSTER_HOME": str(home), "HELIOS_DATA_DIR": str(tmp_path / "data"),
           "HELIOS_EXCHANGE_URL": sim.base_url, "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(REPO_ROOT)}  # this checkout, whatever the venv has installed
    done = subprocess.run(
        [sys.executable, "-c", match.group(1)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("2024-05-03 23:00:00+00:00") for line in lines), done.stdout
    grid = next(line.split() for line in lines if line.startswith("grid "))
    lower, upper, levels = float(grid[1]), float(grid[2]), int(grid[3])
    assert lower < upper
    assert levels >= 4
    assert grid[4] in {"arithmetic", "geometric"}
    assert any(line.startswith("value area") for line in lines)
    regime = next(line.split()[-1] for line in lines if line.startswith("last 15m bar: "))
    assert regime in {"trending", "ranging", "volatile"}
