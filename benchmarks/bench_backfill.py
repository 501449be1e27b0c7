"""History backfills: ours through Dagster vs the same work without Dagster vs a plain ccxt script.

Two workloads against one simulated Binance venue running in its own process (``helios
sim-exchange``): one year of 1m candles of one symbol, then 30 days x 10 symbols.

* ours: ``run_backfill`` as ``helios backfill`` runs it, in-process, into a real (temporary)
  Dagster instance, on SQLite and (when the machine's server at 127.0.0.1:5432 answers) on
  PostgreSQL: fetch, validate, store 1m, the three partitioned 1m checks (pandera
  schema, Great Expectations, gaps), derive 5m..1d, compare them with the exchange's own candles
  (fetched per range), a materialisation and check results per partition;
* the same functions, in the same order, with no Dagster (what Dagster costs);
* the plain script a user would write: ccxt ``fetch_ohlcv`` pages, 10 in flight (ccxt's own
  throttle off, as ours paces by the exchange's weight headers), a pandas frame, one Parquet
  file per day. It validates, derives and checks nothing.

Goals (issue 9): ours >= 0.5x the plain script; Dagster overhead <= 20%; peak memory of a year's
backfill < 1 GiB (measured in a child process, ``ru_maxrss``). Run from the project root:
``python -m benchmarks.bench_backfill`` (about 15 minutes; ``--only month`` or ``--only year``
runs one workload).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import ccxt.async_support as ccxt_async
import dagster as dg
import pandas as pd

from benchmarks._common import free_port, report
from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, compare_range_with_exchange
from helios_pipeline.batch.ingest import Stores, derive_days, ingest_minutes
from helios_pipeline.batch.partition_checks import (
    expectation_outcomes,
    gap_outcome,
    schema_outcomes,
)
from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.domain.timeframe import DAY_MS, day_start_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.quarantine import QuarantineStore

YEAR = (["BTC/USDT"], date(2023, 1, 1), date(2023, 12, 31))
MONTH = (["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT",
          "AVAX/USDT", "DOT/USDT", "LINK/USDT"], date(2024, 3, 1), date(2024, 3, 30))
CHUNK = 31
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


def sim_process() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "helios_pipeline.cli", "sim-exchange",
                                "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            import urllib.request
            urllib.request.urlopen(f"{url}/api/v3/ping", timeout=1)  # noqa: S310
            return process, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the simulated exchange did not start")


def through_dagster(settings: Settings, symbols: list[str], start: date, end: date,
                    postgres_url: str | None = None) -> float:
    """Seconds of ``run_backfill`` into a new instance (SQLite, or PostgreSQL at the URL)."""
    home = settings.data_dir.parent / "dagster"
    home.mkdir(parents=True)
    storage = (f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n" if postgres_url
               else f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    (home / "dagster.yaml").write_text(f"{storage}telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        began = time.perf_counter()
        outcome = run_backfill(symbols, start, end, instance, settings, log_level="ERROR")
        elapsed = time.perf_counter() - began
    assert outcome.success, outcome.failures
    return elapsed


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh database on the machine's PostgreSQL (dropped afterwards), or ``None``."""
    import psycopg2

    name = f"helios_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        yield None
        return
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://{POSTGRES_SERVER.split('://', 1)[1]}/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def without_dagster(settings: Settings, symbols: list[str], start: date, end: date) -> float:
    stores = Stores(CandleStore(settings.data_dir), MetadataStore(metadata_path(settings.data_dir)),
                    QuarantineStore(settings.data_dir))
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]

    async def chunk(symbol: str, part: list[date]) -> None:
        async with ExchangeClient.from_config(settings.exchange_config()) as client:
            minutes = await ingest_minutes(client, stores, symbol, part, settings.validation)
            schema_outcomes(stores.candles, symbol, part)
            expectation_outcomes([(m.day, m.table) for m in minutes], settings.validation)
            for minute in minutes:
                gap_outcome(minute.report.record)
            derived = derive_days(client.exchange_id, None, stores, symbol, minutes)
            await compare_range_with_exchange(
                client, symbol, {m.day: {tf: d.table for tf, d in g.items()}
                                 for m, g in zip(minutes, derived, strict=True)},
                DERIVED_TIMEFRAMES)

    began = time.perf_counter()
    for symbol in symbols:
        for i in range(0, len(days), CHUNK):
            asyncio.run(chunk(symbol, days[i : i + CHUNK]))
    return time.perf_counter() - began


def plain_script(url: str, out: Path, symbols: list[str], start: date, end: date) -> float:
    """What a user would write: ccxt pages, 10 in flight, pandas, a Parquet file per day."""

    async def run() -> None:
        exchange = ccxt_async.binance({"enableRateLimit": False,
                                       "options": {"fetchMarkets": {"types": ["spot"]}}})
        for name in list(exchange.urls["api"]):
            if name in ("public", "private", "v3", "v1"):
                exchange.urls["api"][name] = f"{url}/api/v3"
        try:
            await exchange.load_markets()
            gate = asyncio.Semaphore(10)

            async def page(symbol: str, since: int) -> list[list[float]]:
                async with gate:
                    rows: list[list[float]] = await exchange.fetch_ohlcv(symbol, "1m", since, 1000)
                    return rows

            lo, hi = day_start_ms(start), day_start_ms(end) + DAY_MS
            for symbol in symbols:
                pages = await asyncio.gather(*(page(symbol, s) for s in range(lo, hi, 60_000_000)))
                frame = pd.DataFrame([row for p in pages for row in p],
                                     columns=["timestamp", "open", "high", "low", "close",
                                              "volume"]).drop_duplicates("timestamp")
                frame = frame[(frame.timestamp >= lo) & (frame.timestamp < hi)]
                folder = out / symbol.replace("/", "")
                folder.mkdir(parents=True)
                for day, rows in frame.groupby(frame.timestamp // DAY_MS):
                    rows.to_parquet(folder / f"{day}.parquet", index=False)
        finally:
            await exchange.close()

    began = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - began


def peak_memory_mib(url: str, symbols: list[str], start: date, end: date) -> float:
    """Peak RSS of a child process that runs one backfill through Dagster (imports included)."""
    code = (
        "import resource, sys, tempfile\nfrom pathlib import Path\nfrom dataclasses import replace"
        "\nfrom datetime import date\nfrom benchmarks.bench_backfill import through_dagster\n"
        "from helios_pipeline.settings import Settings\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        f"    s = replace(Settings.from_env({{}}), data_dir=Path(d) / 'data', exchange_url={url!r},"
        " start_date='2017-08-17')\n"
        f"    through_dagster(s, {symbols!r}, date.fromisoformat({start.isoformat()!r}), "
        f"date.fromisoformat({end.isoformat()!r}))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def workload(name: str, url: str, symbols: list[str], start: date, end: date) -> None:
    candles = len(symbols) * ((end - start).days + 1) * 1440
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = replace(Settings.from_env({}), exchange_url=url, start_date="2017-08-17")
        ours = through_dagster(replace(settings, data_dir=root / "a" / "data"), symbols, start,
                               end)
        with postgres_database() as pg_url:
            on_pg = (through_dagster(replace(settings, data_dir=root / "p" / "data"), symbols,
                                     start, end, pg_url) if pg_url else None)
        bare = without_dagster(replace(settings, data_dir=root / "b" / "data"), symbols, start,
                               end)
        plain = plain_script(url, root / "c", symbols, start, end)
    report(f"{name}: candles/s through Dagster vs the plain ccxt script", candles / ours,
           candles / plain, "candles/s", "plain ccxt script", ">= 0.5x", higher_is_better=True)
    report(f"{name}: candles/s without Dagster vs the plain ccxt script", candles / bare,
           candles / plain, "candles/s", "plain ccxt script", higher_is_better=True)
    report(f"{name}: seconds through Dagster vs the same functions without it", ours, bare, "s",
           "no Dagster", "<= 1.2x")
    if on_pg is not None:
        report(f"{name}: candles/s through Dagster on PostgreSQL vs the plain ccxt script",
               candles / on_pg, candles / plain, "candles/s", "plain ccxt script", ">= 0.5x",
               higher_is_better=True)
        report(f"{name}: seconds through Dagster on PostgreSQL vs without Dagster", on_pg, bare,
               "s", "no Dagster", "<= 1.2x")
    else:
        print("(PostgreSQL at 127.0.0.1:5432 not reachable: its variant was skipped)")
    print(f"{name}: {candles:,} candles; Dagster {ours:.1f} s (SQLite), "
          f"{'-' if on_pg is None else f'{on_pg:.1f}'} s (PostgreSQL), no Dagster {bare:.1f} s, "
          f"plain {plain:.1f} s; Dagster's share (SQLite) {(ours - bare) / ours:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", choices=("year", "month"),
                        help="run one workload (and skip the memory measurement)")
    only = parser.parse_args().only
    process, url = sim_process()
    try:
        if only in (None, "year"):
            workload("one year x 1 symbol", url, *YEAR)
        if only in (None, "month"):
            workload("30 days x 10 symbols", url, *MONTH)
        if only is None:
            print(f"peak memory of a year's backfill through Dagster: "
                  f"{peak_memory_mib(url, *YEAR):,.0f} MiB (goal < 1024 MiB)")
    finally:
        process.terminate()
        process.wait()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"(benchmark process peak RSS {peak:,} MiB)")


if __name__ == "__main__":
    main()
