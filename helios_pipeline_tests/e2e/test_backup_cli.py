"""``helios backup`` while the platform writes, ``helios restore`` into an empty root, verified."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from helios_pipeline.batch.ingest import Stores, ingest_range
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore

DAYS = [date(2024, 5, 1), date(2024, 5, 2)]
LATER = [date(2024, 5, 1) + timedelta(days=i) for i in range(2, 12)]


def ingest(url: str, root: Path, symbol: str, days: list[date]) -> None:
    async def run() -> None:
        async with ExchangeClient("binance", base_url=url) as client:
            stores = Stores(CandleStore(root), MetadataStore(root / "metadata.sqlite"),
                            QuarantineStore(root))
            await ingest_range(client, stores, symbol, days)

    asyncio.run(run())


def helios(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELIOS_DATA_DIR": str(root)}
    return subprocess.run([sys.executable, "-m", "helios_pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def candles(root: Path, symbol: str) -> pd.DataFrame:
    query = MarketDataQuery.from_settings(Settings(data_dir=root, start_date="2024-05-01"))
    return query.ohlcv(symbol, "1h", start=DAYS[0], end=DAYS[-1] + timedelta(days=1))


def test_backup_while_writing_then_restore_reads_the_same_candles(
        tmp_path: Path, sim: SimExchangeServer) -> None:
    root, saved, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    ingest(sim.base_url, root, "BTC/USDT", DAYS)
    before = candles(root, "BTC/USDT")
    assert len(before) == 48

    # The platform keeps writing (another symbol's days, catalog rows) while the backup runs.
    writer = threading.Thread(target=ingest, args=(sim.base_url, root, "ETH/USDT", LATER))
    writer.start()
    taken = helios(root, "backup", str(saved))
    writer.join()
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "SQLite database(s)" in taken.stdout
    assert (saved / "manifest.json").is_file()

    done = helios(restored, "restore", str(saved))
    assert done.returncode == 0, done.stdout + done.stderr
    pd.testing.assert_frame_equal(candles(restored, "BTC/USDT"), before)
    catalog = MetadataStore(restored / "metadata.sqlite")
    assert catalog.partition_history("binance", "BTC/USDT", Timeframe.M1, DAYS[0])

    again = helios(restored, "restore", str(saved))  # never over existing data
    assert again.returncode == 2
    assert "is not empty" in again.stderr


def test_restore_refuses_a_damaged_backup_before_copying_anything(
        tmp_path: Path, sim: SimExchangeServer) -> None:
    root, saved, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    ingest(sim.base_url, root, "BTC/USDT", DAYS[:1])
    assert helios(root, "backup", str(saved)).returncode == 0
    partition = next(p for p in saved.rglob("ohlcv_1m_*.parquet"))
    data = bytearray(partition.read_bytes())
    data[len(data) // 2] ^= 0xFF
    partition.write_bytes(bytes(data))

    refused = helios(restored, "restore", str(saved))
    assert refused.returncode == 2
    assert partition.name in refused.stderr
    assert "does not match its SHA-256" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not restored.exists() or not any(restored.iterdir())

    inside = helios(root, "backup", str(root / "copy"))
    assert inside.returncode == 2
    assert "inside the data root" in inside.stderr
