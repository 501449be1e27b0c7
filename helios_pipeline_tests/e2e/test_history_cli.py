"""``helios history``: a partition's versions, and what a re-fetch changed, from the catalog."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from helios_pipeline.batch.ingest import Stores, ingest_range
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore

DAY = date(2024, 5, 2)


def ingest(url: str, root: Path) -> None:
    async def run() -> None:
        async with ExchangeClient("binance", base_url=url) as client:
            stores = Stores(CandleStore(root), MetadataStore(root / "metadata.sqlite"),
                            QuarantineStore(root))
            await ingest_range(client, stores, "BTC/USDT", [DAY])

    asyncio.run(run())


def helios(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELIOS_DATA_DIR": str(root)}
    return subprocess.run([sys.executable, "-m", "helios_pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_history_lists_versions_and_shows_what_a_refetch_changed(
        tmp_path: Path, sim: SimExchangeServer) -> None:
    root = tmp_path / "data"
    ingest(sim.base_url, root)
    sim.set_faults(f"spike:symbol=BTCUSDT,at={DAY}T12:00,factor=1.05")
    ingest(sim.base_url, root)
    done = helios(root, "history", "BTC/USDT", str(DAY))
    assert done.returncode == 0, done.stderr
    versions = MetadataStore(root / "metadata.sqlite").partition_history(
        "binance", "BTC/USDT", Timeframe.M1, DAY)
    assert len(versions) == 2
    for version in versions:  # each listed with its hash
        assert version.content_hash[:12] in done.stdout
    assert "v1 -> v2: 0 candles added, 0 removed" in done.stdout
    assert "~ 12:00 close:" in done.stdout or "~ 12:00 high:" in done.stdout
    older = helios(root, "history", "BTC/USDT", str(DAY), "--diff", "2", "1")
    assert older.returncode == 0
    assert "v2 -> v1" in older.stdout
    missing = helios(root, "history", "BTC/USDT", "2024-06-01")
    assert missing.returncode == 2
    assert "No stored versions of BTC/USDT 1m 2024-06-01" in missing.stderr
    assert "Traceback" not in missing.stdout + missing.stderr
