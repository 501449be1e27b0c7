"""Candles ingested per second: full path vs ccxt's own parsing of the same responses.

Ours: simulated exchange -> HTTP -> real ccxt client (rate limiter, breaker, retries) -> exact
Decimal candles -> Parquet partition + catalog row, for 10 symbol-days. Baseline: ccxt's
``parse_ohlcvs`` (float parsing, no I/O) over the very kline responses of those days, recorded
from the same server in the same run. The ratio says how much of ccxt's bare parsing speed the
whole path keeps while it also fetches, checks and durably stores every candle exactly.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import ccxt

from benchmarks._common import report
from helios_pipeline.batch.ohlcv import ingest_ohlcv_partitions
from helios_pipeline.domain.timeframe import DAY_MS, day_start_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
DAYS = [date(2024, 2, 1) + timedelta(days=i) for i in range(5)]


def record_responses(api_url: str) -> list[list[list[object]]]:
    """The raw kline responses of every day, as ccxt would receive them (1000 + 440 per day)."""
    responses = []
    for symbol in SYMBOLS:
        for day in DAYS:
            start = day_start_ms(day)
            for chunk_start in (start, start + 1000 * 60_000):
                url = (f"{api_url}/klines?symbol={symbol.replace('/', '')}&interval=1m"
                       f"&startTime={chunk_start}&endTime={start + DAY_MS - 1}&limit=1000")
                with urllib.request.urlopen(url) as answer:  # noqa: S310 - localhost only
                    responses.append(json.loads(answer.read()))
    return responses


def ours(base_url: str, data_dir: Path) -> tuple[int, float]:
    async def run() -> int:
        async with ExchangeClient("binance", base_url=base_url) as client:
            reports = await ingest_ohlcv_partitions(
                client, CandleStore(data_dir), MetadataStore(data_dir / "meta.sqlite"),
                [(s, d) for s in SYMBOLS for d in DAYS],
            )
        return sum(r.record.rows for r in reports)

    began = time.perf_counter()
    rows = asyncio.run(run())
    return rows, time.perf_counter() - began


def baseline(responses: list[list[list[object]]]) -> tuple[int, float]:
    exchange = ccxt.binance()
    began = time.perf_counter()
    rows = sum(len(exchange.parse_ohlcvs(r, None, "1m")) for r in responses)
    return rows, time.perf_counter() - began


def main() -> None:
    with SimExchangeServer(port=0) as sim, tempfile.TemporaryDirectory() as tmp:
        responses = record_responses(sim.api_url)  # also warms the exchange's day cache
        base_rows, base_s = min((baseline(responses) for _ in range(3)), key=lambda r: r[1])
        runs = [ours(sim.base_url, Path(tmp) / f"run{i}") for i in range(3)]
        our_rows, our_s = min(runs, key=lambda r: r[1])
    assert our_rows == base_rows == len(SYMBOLS) * len(DAYS) * 1440
    report("ingest, candles per second", our_rows / our_s, base_rows / base_s, "candles/s",
           "ccxt parse_ohlcvs of the same responses", higher_is_better=True)


if __name__ == "__main__":
    main()
