"""The cold archive: a year of 1m through ``MarketDataQuery`` from 12 month files vs 365 days.

A year of synthetic 1m candles for one symbol (``bench_query``'s random walk, exact decimals) is
written as daily files, copied, and the copy's 12 months compacted into the archive
(``batch.archive.compact_month``, warm window past: every daily file removed). In the same run:

Each pair is timed alternately (ours, baseline, ours, ...; median of 9) so that both see the same
machine load.

1. ``ohlcv(..., as_float=True)`` of the year from the archive vs a raw ``pq.read_table`` of the
   12 archive files, concatenated and cast to float64 (goal: < 150 ms and <= 1.5x);
2. the same call from the 365 daily files (what compaction buys), beside the same raw read of
   the archive files, and beside a raw read of the 365 daily files;
3. bytes on disk, archive vs daily files;
4. the scan engines the archive's hive layout admits, each beside ours: a ``pyarrow.dataset``
   over the layout (filtered by symbol and timeframe, sorted, the same frame conversion) and
   DuckDB's ``read_parquet(..., hive_partitioning = true)`` with ``CAST(... AS DOUBLE)`` to
   a pandas frame. Ours reads the 12 month files it names directly.

Run from the project root: ``python -m benchmarks.bench_archive`` (about a minute).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.dataset as ds

from benchmarks._common import report
from benchmarks.bench_query import FIRST, NOW, SYMBOL, raw_float_frame, timings_us, write_year
from helios_pipeline.batch.archive import Tiers, closed_months, compact_month
from helios_pipeline.domain.columns import DECIMAL_COLUMNS
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.storage.archive import CandleArchive
from helios_pipeline.storage.candle_codec import to_frame
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore

TODAY = date(2024, 3, 1)  # every day of 2023 is past a 30-day warm window


def compact_year(root: Path) -> list[Path]:
    tiers = Tiers(CandleStore(root), CandleArchive(root / "archive"),
                  MetadataStore(root / "metadata.sqlite"), "binance")
    paths = []
    for month in closed_months(FIRST, date(2024, 1, 1)):
        (done,) = compact_month(tiers, SYMBOL, month, TODAY, warm_days=30,
                                timeframes=[Timeframe.M1])
        assert len(done.removed) == len(done.archived.days)
        paths.append(Path(done.archived.path))
    return paths


def paired_ms(ours: Callable[[], object], raw: Callable[[], object], n: int = 9
              ) -> tuple[float, float]:
    """Medians of ``ours`` and ``raw``, timed alternately so both see the same machine load."""
    ours(), raw()  # warm the OS cache and imports
    a, b = [], []
    for _ in range(n):
        a += timings_us(ours, 1)
        b += timings_us(raw, 1)
    return statistics.median(a) / 1000, statistics.median(b) / 1000


def year_call(query: MarketDataQuery) -> Callable[[], None]:
    def call() -> None:
        frame = query.ohlcv(SYMBOL, "1m", start=FIRST, end=NOW, as_float=True)
        assert len(frame) == 525_600

    return call


def dataset_scan(archive_root: Path) -> Callable[[], None]:
    """A year of 1m through a ``pyarrow.dataset`` over the hive layout, as a float frame."""
    def call() -> None:
        dataset = ds.dataset(archive_root / "ohlcv", format="parquet", partitioning="hive")
        table = dataset.to_table(filter=(ds.field("symbol") == "BTCUSDT")
                                 & (ds.field("timeframe") == "1m"))
        table = table.drop_columns(["exchange", "symbol", "timeframe", "month"])
        assert len(to_frame(table.sort_by("timestamp"), as_float=True)) == 525_600

    return call


def duckdb_scan(archive_root: Path) -> Callable[[], None]:
    """The same through DuckDB: one SQL scan of the layout, decimals cast to DOUBLE."""
    columns = ", ".join(f"CAST({f.name} AS DOUBLE) AS {f.name}" if f.name in DECIMAL_COLUMNS
                        else f.name for f in OHLCV_SCHEMA)
    sql = (f"SELECT {columns} FROM read_parquet(?, hive_partitioning = true) "  # noqa: S608
           "WHERE symbol = 'BTCUSDT' AND timeframe = '1m' ORDER BY timestamp")
    glob = f"{archive_root}/ohlcv/**/*.parquet"

    def call() -> None:
        assert len(duckdb.execute(sql, [glob]).df()) == 525_600

    return call


def size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daily_root, cold_root = Path(tmp) / "daily", Path(tmp) / "cold"
        began = time.perf_counter()
        daily = write_year(daily_root)
        shutil.copytree(daily_root, cold_root)
        began_compact = time.perf_counter()
        months = compact_year(cold_root)
        print(f"(wrote {len(daily)} daily files in {began_compact - began:.1f} s; compacted "
              f"them into {len(months)} month files in "
              f"{time.perf_counter() - began_compact:.1f} s)")

        def query(root: Path) -> MarketDataQuery:
            return MarketDataQuery(root, clock_ms=lambda: int(NOW.timestamp() * 1000),
                                   start_date="2023-01-01", cache_ttl_s=0)

        cold, raw_cold = paired_ms(year_call(query(cold_root)), lambda: raw_float_frame(months))
        warm, raw_cold_2 = paired_ms(year_call(query(daily_root)),
                                     lambda: raw_float_frame(months))
        warm_2, raw_warm = paired_ms(year_call(query(daily_root)),
                                     lambda: raw_float_frame(daily))
        report("one year of 1m as a float frame, from the archive (12 files)", cold, raw_cold,
               "ms", "raw pq.read_table of the 12 archive files + cast", "< 150 ms, <= 1.5x")
        report("one year of 1m as a float frame, from 365 daily files", warm, raw_cold_2, "ms",
               "raw pq.read_table of the 12 archive files + cast")
        report("one year of 1m as a float frame, from 365 daily files", warm_2, raw_warm, "ms",
               "raw pq.read_table of the same 365 daily files + cast")
        report("bytes on disk, archive vs daily files", size(months) / 2**20,
               size(daily) / 2**20, "MiB", "365 daily Parquet files (snappy)")
        for name, scan in (("a pyarrow.dataset scan of the layout + the same conversion",
                            dataset_scan(cold_root / "archive")),
                           ("a DuckDB scan of the layout, CAST AS DOUBLE, .df()",
                            duckdb_scan(cold_root / "archive"))):
            mine, theirs = paired_ms(year_call(query(cold_root)), scan)
            report("one year of 1m as a float frame, from the archive", mine, theirs, "ms",
                   name)


if __name__ == "__main__":
    main()
