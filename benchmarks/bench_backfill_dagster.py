"""One-month backfill, 30 days x 10 symbols: through Dagster vs the same functions called directly.

Ours: ``run_backfill`` executes the runs Dagster's backfill policy plans (one per symbol, 30 days
each) in-process against a real (temporary, SQLite) Dagster instance. Each run does what the
candle multi-asset does: ingest ``ohlcv_1m``, derive 5m..1d from it, and evaluate the checks (gaps
from the catalog, each derived timeframe against the exchange's own candles). Baseline: the same
runs' work through the same functions, with no Dagster. Both write to fresh data roots against
the same simulated exchange. Goal: Dagster overhead under 20%.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg

from benchmarks._common import report
from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, compare_with_exchange, derive_day
from helios_pipeline.batch.ohlcv import ingest_ohlcv_partitions
from helios_pipeline.defs.backfill import plan_backfill, run_backfill
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path

SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT",
           "ADA/USDT", "DOGE/USDT", "AVAX/USDT", "DOT/USDT", "LINK/USDT"]
START, END = date(2024, 3, 1), date(2024, 3, 30)


def through_dagster(settings: Settings, home: Path) -> float:
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        began = time.perf_counter()
        outcome = run_backfill(SYMBOLS, START, END, instance, settings, log_level="ERROR")
        elapsed = time.perf_counter() - began
    assert outcome.success, outcome.failures
    return elapsed


def directly(settings: Settings) -> float:
    store = CandleStore(settings.data_dir)
    catalog = MetadataStore(metadata_path(settings.data_dir))

    async def one_run(symbol: str, days: list[date]) -> None:
        async with ExchangeClient.from_config(settings.exchange_config()) as client:
            await ingest_ohlcv_partitions(client, store, catalog, [(symbol, d) for d in days])
            for timeframe in DERIVED_TIMEFRAMES:
                for day in days:
                    derive_day(store, catalog, settings.exchange, symbol, day, timeframe)
            for day in days:  # the gap check reads the catalog row
                catalog.latest_partition(settings.exchange, symbol, Timeframe.M1, day)
            for timeframe in DERIVED_TIMEFRAMES:
                for day in days:
                    await compare_with_exchange(client, store, symbol, timeframe, day)

    began = time.perf_counter()
    for planned in plan_backfill(SYMBOLS, START, END):
        asyncio.run(one_run(planned.symbol, list(planned.days)))
    return time.perf_counter() - began


def main() -> None:
    with SimExchangeServer(port=0) as sim, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = replace(Settings.from_env({}), exchange_url=sim.base_url, start_date="2024-01-01")
        # Warm the exchange's day cache so neither side pays for generating the market.
        directly(replace(base, data_dir=root / "warmup"))
        direct_s = directly(replace(base, data_dir=root / "direct"))
        (root / "home").mkdir()
        dagster_s = through_dagster(replace(base, data_dir=root / "dagster"), root / "home")
    partitions = len(SYMBOLS) * ((END - START).days + 1)
    report(f"backfill {partitions} partitions (10 symbols x 30 days)", dagster_s, direct_s, "s",
           "same functions without Dagster", goal="overhead < 20% (ratio < 1.20x)")


if __name__ == "__main__":
    main()
