"""The range ingest stores exactly what the per-day path stores: files, quarantine and catalog.

``ingest_range`` fetches a whole range once and validates with the frame engine; the reference
is ``ingest_ohlcv_day`` (per-candle validation) followed by ``derive_day`` (derived from the
stored file). On real Binance days (an outage, microsecond files) and on days with injected
faults (a spike, a broken candle, a gap), both must leave identical bytes and catalog rows.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, derive_day
from helios_pipeline.batch.ingest import Stores, ingest_range
from helios_pipeline.batch.ohlcv import ingest_ohlcv_day
from helios_pipeline.domain.aggregate import aggregate_table
from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.resample import aggregate_candles
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candle_codec import to_table
from helios_pipeline.storage.candles import CandleStore, candle_columns
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline_tests.conftest import KLINES_DIR

FAULTY = date(2024, 3, 5)
FAULTS = (f"spike:symbol=ETHUSDT,at={FAULTY}T12:00,factor=3;"
          f"broken_ohlc:symbol=ETHUSDT,at={FAULTY}T13:00;"
          f"missing:symbol=ETHUSDT,start={FAULTY}T15:00,minutes=30")


@pytest.fixture(scope="module")
def venue() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, data_dir=KLINES_DIR, faults=FAULTS) as server:
        yield server


def stores(root: Path) -> Stores:
    return Stores(CandleStore(root), MetadataStore(root / "metadata.sqlite"),
                  QuarantineStore(root))


def by_range(url: str, root: Path, symbol: str, days: list[date]) -> None:
    async def run() -> None:
        async with ExchangeClient("binance", base_url=url) as client:
            await ingest_range(client, stores(root), symbol, days)

    asyncio.run(run())


def by_day(url: str, root: Path, symbol: str, days: list[date]) -> None:
    async def run() -> None:
        async with ExchangeClient("binance", base_url=url) as client:
            for day in days:
                await ingest_ohlcv_day(client, CandleStore(root),
                                       MetadataStore(root / "metadata.sqlite"), symbol, day)

    asyncio.run(run())
    for day in days:
        for tf in DERIVED_TIMEFRAMES:
            derive_day(CandleStore(root), MetadataStore(root / "metadata.sqlite"), "binance",
                       symbol, day, tf)


def files(root: Path) -> dict[str, str]:
    """Hash of every candle file; quarantine records without their detection time."""
    out = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "metadata" in path.name:
            continue
        data = path.read_bytes()
        if path.suffix == ".jsonl":  # detected_at differs between any two runs
            records = [QuarantineRecord.from_json(line) for line in data.decode().splitlines()]
            data = repr([replace(r, detected_at="") for r in records]).encode()
        out[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def catalog(root: Path) -> list[tuple[object, ...]]:
    return [(r.symbol, r.timeframe, r.day, r.version, r.rows, r.missing_minutes,
             r.missing_ranges, r.content_hash, r.source)
            for r in MetadataStore(root / "metadata.sqlite").list_partitions()]


@pytest.mark.parametrize(("symbol", "days"), [
    ("BTC/USDT", [date(2019, 5, 15)]),                      # real: a 10-hour outage
    ("BTC/USDT", [date(2024, 12, 31), date(2025, 1, 1)]),   # real: ms then microsecond files
    ("ETH/USDT", [date(2024, 3, 4), FAULTY, date(2024, 3, 6)]),  # seeded, with faults
])
def test_range_and_day_paths_store_the_same_bytes(
    venue: SimExchangeServer, tmp_path: Path, symbol: str, days: list[date]
) -> None:
    by_range(venue.base_url, tmp_path / "range", symbol, days)
    by_day(venue.base_url, tmp_path / "day", symbol, days)
    assert files(tmp_path / "range") == files(tmp_path / "day")
    assert catalog(tmp_path / "range") == catalog(tmp_path / "day")
    assert len(files(tmp_path / "range")) >= 6 * len(days)


def test_the_faulty_day_is_quarantined_and_counted_alike(
    venue: SimExchangeServer, tmp_path: Path
) -> None:
    by_range(venue.base_url, tmp_path, "ETH/USDT", [FAULTY])
    quarantined = QuarantineStore(tmp_path).load("ETH/USDT", FAULTY, FAULTY)
    assert sorted(r.rules for r in quarantined) == [("ohlc_inconsistent",), ("price_jump",)]
    record = MetadataStore(tmp_path / "metadata.sqlite").latest_partition(
        "binance", "ETH/USDT", Timeframe.M1, FAULTY)
    assert record is not None
    assert (record.rows, record.missing_minutes) == (1408, 30)  # + 2 quarantined = 1440


def test_a_second_run_rewrites_nothing(venue: SimExchangeServer, tmp_path: Path) -> None:
    days = [date(2024, 3, 4), FAULTY]
    by_range(venue.base_url, tmp_path, "ETH/USDT", days)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.parquet")}
    by_range(venue.base_url, tmp_path, "ETH/USDT", days)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.parquet")} == before
    assert {r[3] for r in catalog(tmp_path)} == {1}  # one version per content


def test_arrow_aggregation_equals_the_decimal_definition(tmp_path: Path) -> None:
    """``aggregate_table`` builds every bucket as ``aggregate_candles`` does, flags included."""
    store = CandleStore(tmp_path)
    by_day_candles = store  # real outage day: partial buckets around the gap
    with SimExchangeServer(port=0, data_dir=KLINES_DIR) as server:
        by_day(server.base_url, tmp_path, "BTC/USDT", [date(2019, 5, 15)])
    minutes = by_day_candles.load("BTC/USDT", Timeframe.M1, date(2019, 5, 15))
    table = to_table(candle_columns(minutes), "test")
    for tf in DERIVED_TIMEFRAMES:
        expected = to_table(candle_columns(aggregate_candles(minutes, tf)), "test")
        assert aggregate_table(table, tf).equals(expected), tf
