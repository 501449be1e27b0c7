"""Every exchange request attempt leaves one line in system/api_performance (real HTTP)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from helios_pipeline.domain.logs import API_PERFORMANCE_LOGGER
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.system_logs import install_system_logs


def test_each_request_is_timed_with_its_weight(tmp_path: Path, sim: SimExchangeServer) -> None:
    install_system_logs(tmp_path)
    sim.set_faults("http429:count=1,retry_after=0,path=ticker")

    async def run() -> None:
        async with ExchangeClient("binance", base_url=sim.base_url) as client:
            await client.fetch_tickers(["BTC/USDT"])

    try:
        asyncio.run(run())
    finally:
        handlers = [h for h in logging.getLogger(API_PERFORMANCE_LOGGER).handlers
                    if str(tmp_path) in str(getattr(h, "baseFilename", ""))]
        for handler in handlers:
            handler.close()
            logging.getLogger(API_PERFORMANCE_LOGGER).removeHandler(handler)
    lines = [json.loads(line) for line in
             (tmp_path / "system" / "api_performance" / "requests.jsonl").read_text().splitlines()]
    statuses = [line["status"] for line in lines if line["exchange"] == "binance"]
    assert 429 in statuses  # the refused attempt is logged too
    assert statuses[-1] == 200
    assert all(line["ms"] >= 0 and line["weight"] >= 1 for line in lines)
    assert any(line["used_weight"] is not None for line in lines if line["status"] == 200)
