"""The README's archive snippet runs as written: a year from the archive, daily files and Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.conftest import REPO_ROOT

SNIPPET = re.compile(r"<!-- archive-snippet.*?-->\s*```python\n(.*?)```", re.DOTALL)


@pytest.mark.timeout(900)  # a year's backfill from the simulated exchange: ~1 min idle, 3 loaded
def test_archive_snippet_reads_a_year_across_three_tiers(
        tmp_path: Path, sim: SimExchangeServer, redis_url: str) -> None:
    match = SNIPPET.search((REPO_ROOT / "README.md").read_text())
    assert match, "README lost its archive snippet"
    env = {"HELIOS_DATA_DIR": str(tmp_path / "data"), "HELIOS_EXCHANGE_URL": sim.base_url,
           "HELIOS_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin",
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    today = datetime.now(UTC).date()
    done = subprocess.run([sys.executable, "-c", match.group(1)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    tiers = eval(lines["tiers"])  # noqa: S307 - a dict literal the snippet printed
    cutoff = today - timedelta(days=30)
    assert tiers["archive"] == (cutoff - (today - timedelta(days=365))).days * 24
    assert tiers["warm"] == 30 * 24
    assert lines["live"] == "minutes 5"
    assert lines["hours"].startswith(f"{365 * 24 + tiers.get('hot', 0)} from "
                                     f"{today - timedelta(days=365)} 00:00:00+00:00")
    minute_files = list((tmp_path / "data" / "market_data").rglob("ohlcv_1m_*.parquet"))
    assert len(minute_files) == 30  # the warm window; the rest lives in the archive
