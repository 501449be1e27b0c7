"""History from the bulk archive: ours (``helios backfill``'s path) vs the plain REST script.

One simulated Binance venue in its own process (``helios sim-exchange``) serves both REST klines
and the bulk archive (``/data/spot/monthly/klines/...zip``, the same candles). In the same run:

* ours through Dagster: ``run_backfill`` as ``helios backfill`` runs it, with ``HELIOS_BULK_URL``
  pointing at the simulator: closed months from monthly files (checksum-verified and
  cross-checked against REST), then validate, store 1m, the 1m checks, derive 5m..1d and compare
  them with the exchange's candles, a materialisation and check results per partition;
* the same functions with no Dagster (the archive path's own cost);
* the plain REST script of ``bench_backfill`` (ccxt pages, 10 in flight, pandas, a Parquet file
  per day; it validates, derives and checks nothing).

REST weight is counted by the simulator (its request log, Binance's weights) for each variant.
Goals (issue 14): a year of one symbol >= 2x the plain script; ten symbols x one year < 60 s.
Run from the project root: ``python -m benchmarks.bench_bulk`` (``--one-year``: the first
workload only).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from benchmarks._common import free_port, report
from benchmarks.bench_backfill import CHUNK, plain_script, through_dagster
from helios_pipeline.batch.bulk import ingest_minutes_bulk
from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, compare_range_with_exchange
from helios_pipeline.batch.ingest import Stores, derive_days
from helios_pipeline.batch.partition_checks import (
    expectation_outcomes,
    gap_outcome,
    schema_outcomes,
)
from helios_pipeline.exchanges.bulk_archive import BulkArchiveClient
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.quarantine import QuarantineStore

START, END = date(2023, 1, 1), date(2023, 12, 31)
TEN = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT",
       "AVAX/USDT", "DOT/USDT", "LINK/USDT"]
WEIGHTS = {"/api/v3/klines": 2, "/api/v3/exchangeInfo": 20}
# Ten symbols x a year is ~10,600 weight of REST pages: over Binance's 6,000 a minute, which
# the plain script (no pacing) would run into with 429s. The simulator here allows more, so the
# baseline runs at network speed; the weight each variant spends is reported instead.
SIM_WEIGHT_LIMIT = 1_000_000


def sim_process() -> tuple[subprocess.Popen[bytes], str]:
    """``serve_forever`` in a child process with a large weight budget; its base URL."""
    port = free_port()
    code = ("from helios_pipeline.sim.server import serve_forever\n"
            f"serve_forever({port}, None, '', weight_limit={SIM_WEIGHT_LIMIT})\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(f"{url}/api/v3/ping", timeout=1).close()  # noqa: S310
            return process, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the simulated exchange did not start")


def rest_weight(url: str) -> int:
    """REST weight the simulator has served since its last reset (archive files are free)."""
    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=10) as answer:  # noqa: S310
        stats = json.load(answer)
    return sum(count * WEIGHTS.get(path, 2) for path, count in stats["requests"].items()
               if path.startswith("/api/"))


def reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/_sim/reset", method="POST")  # noqa: S310
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


def archive_without_dagster(settings: Settings, symbols: list[str], start: date,
                            end: date) -> float:
    """The candle run's work per chunk of 31 days, on the archive path, with no Dagster."""
    stores = Stores(CandleStore(settings.data_dir), MetadataStore(metadata_path(settings.data_dir)),
                    QuarantineStore(settings.data_dir))
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    bulk_url = settings.bulk_archive_url()
    assert bulk_url is not None

    async def chunk(symbol: str, part: list[date]) -> None:
        async with (ExchangeClient.from_config(settings.exchange_config()) as client,
                    BulkArchiveClient(bulk_url) as archive):
            minutes, _ = await ingest_minutes_bulk(client, archive, stores, symbol, part,
                                                   settings.validation)
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


def one_year(url: str, root: Path, settings: Settings) -> None:
    candles = 365 * 1440
    reset(url)
    ours = through_dagster(replace(settings, data_dir=root / "a" / "data"), ["BTC/USDT"], START,
                           END)
    ours_weight = rest_weight(url)
    reset(url)
    bare = archive_without_dagster(replace(settings, data_dir=root / "b" / "data"), ["BTC/USDT"],
                                   START, END)
    bare_weight = rest_weight(url)
    reset(url)
    plain = plain_script(url, root / "c", ["BTC/USDT"], START, END)
    plain_weight = rest_weight(url)
    name = "one year x 1 symbol (archive)"
    report(f"{name}: candles/s through Dagster vs the plain REST script", candles / ours,
           candles / plain, "candles/s", "plain REST script", ">= 2x", higher_is_better=True)
    report(f"{name}: candles/s without Dagster vs the plain REST script", candles / bare,
           candles / plain, "candles/s", "plain REST script", higher_is_better=True)
    report(f"{name}: REST weight through Dagster vs the plain REST script", ours_weight,
           plain_weight, "weight", "plain REST script")
    print(f"{name}: Dagster {ours:.1f} s, no Dagster {bare:.1f} s, plain {plain:.1f} s; REST "
          f"weight: Dagster {ours_weight}, no Dagster {bare_weight}, plain {plain_weight}")


def ten_years(url: str, root: Path, settings: Settings) -> None:
    candles = len(TEN) * 365 * 1440
    reset(url)
    bare = archive_without_dagster(replace(settings, data_dir=root / "d" / "data"), TEN, START,
                                   END)
    bare_weight = rest_weight(url)
    reset(url)
    plain = plain_script(url, root / "e", TEN, START, END)
    plain_weight = rest_weight(url)
    name = "ten symbols x one year (archive, no Dagster)"
    report(f"{name}: seconds vs the plain REST script", bare, plain, "s", "plain REST script",
           "< 60 s")
    report(f"{name}: REST weight vs the plain REST script", bare_weight, plain_weight, "weight",
           "plain REST script")
    print(f"{name}: {candles:,} candles; ours {bare:.1f} s, plain {plain:.1f} s")


def main() -> None:
    """Both workloads; ``--one-year`` runs the first only (the second takes 10x as long)."""
    process, url = sim_process()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = replace(Settings.from_env({}), exchange_url=url, bulk_url=url,
                               start_date="2017-08-17")
            one_year(url, Path(tmp), settings)
            if "--one-year" not in sys.argv[1:]:
                ten_years(url, Path(tmp), settings)
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
