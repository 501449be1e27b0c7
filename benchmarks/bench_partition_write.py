"""One-day partition write: ``CandleStore.store`` vs raw ``pq.write_table`` of the same data.

Both start from the same 1,440 exact-Decimal candles that the client returns. Ours checks the
day (symbol, alignment, duplicates), converts to Arrow refusing any lost digit, writes atomically
(temp file, fsync, rename, fsync folder) and hashes the bytes. The baseline builds an Arrow table
of the same columns and types with plain ``pa.array`` and calls ``pq.write_table``: no checks, no
fsync. Goal: ours <= 1.5x. A second line compares with ``pq.write_table`` of a table that is
already built, which shows what turning Python Decimals into Arrow costs on its own.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._common import median_of, report
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore

DAY = date(2024, 1, 15)


def fetch_day() -> list:  # type: ignore[type-arg]
    """1,440 real-shaped candles through the real client (simulated exchange)."""
    import asyncio

    from helios_pipeline.domain.timeframe import day_start_ms
    from helios_pipeline.exchanges.client import ExchangeClient

    async def run() -> list:  # type: ignore[type-arg]
        with SimExchangeServer(port=0) as sim:
            async with ExchangeClient("binance", base_url=sim.base_url) as client:
                start = day_start_ms(DAY)
                return await client.fetch_ohlcv("BTC/USDT", Timeframe.M1, start, start + 86_400_000)

    return asyncio.run(run())


def main() -> None:
    candles = fetch_day()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = CandleStore(root / "ours")
        path = store.path("BTC/USDT", Timeframe.M1, DAY)

        def ours() -> None:
            path.unlink(missing_ok=True)  # a real write each time, not the idempotent no-op
            store.store("BTC/USDT", Timeframe.M1, DAY, candles)

        ours()
        table = store.load_table("BTC/USDT", Timeframe.M1, DAY)
        raw_path = root / "raw.parquet"

        def baseline() -> None:
            columns = {f.name: [getattr(c, _attr(f.name)) for c in candles] for f in table.schema}
            columns["timestamp"] = [c.timestamp for c in candles]
            pq.write_table(pa.table(columns, schema=table.schema), raw_path)

        def write_only() -> None:
            pq.write_table(table, raw_path)

        for _ in range(3):  # warm up all three
            ours()
            baseline()
            write_only()
        ours_s = median_of(ours, repeat=51)
        base_s = median_of(baseline, repeat=51)
        write_s = median_of(write_only, repeat=51)
    report("partition write, 1440 rows", ours_s * 1000, base_s * 1000, "ms",
           "pa.table from the candles + pq.write_table", goal="<= 1.5x")
    report("partition write, 1440 rows", ours_s * 1000, write_s * 1000, "ms",
           "pq.write_table of a table already built")


def _attr(column: str) -> str:
    return "close_time_ms" if column == "close_time" else column


if __name__ == "__main__":
    main()
