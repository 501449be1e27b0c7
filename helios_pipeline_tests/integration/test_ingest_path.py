"""Full batch path over HTTP: simulated exchange -> real ccxt client -> files + catalog."""

from __future__ import annotations

import asyncio
import csv
import lzma
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from helios_pipeline.batch.ohlcv import PartitionReport, ingest_ohlcv_day
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.errors import ExchangeDataError
from helios_pipeline.exchanges.retry import RetryPolicy
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)


def ingest(base_url: str, data_dir: Path, symbol: str, day: date) -> PartitionReport:
    async def run() -> PartitionReport:
        async with ExchangeClient("binance", base_url=base_url, retry=FAST_RETRY) as client:
            return await ingest_ohlcv_day(
                client, CandleStore(data_dir), MetadataStore(data_dir / "meta.sqlite"), symbol, day
            )

    return asyncio.run(run())


@pytest.fixture(scope="module")
def replay(real_data: Path) -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, data_dir=real_data / "binance_btcusdt_1m") as server:
        yield server


def read_source_rows(path: Path) -> list[list[str]]:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as handle:  # type: ignore[operator]
        return list(csv.reader(handle))


@pytest.mark.parametrize(
    ("day", "rows", "missing"),
    [
        (date(2017, 8, 17), 1200, 240),  # listed at 04:00
        (date(2019, 5, 15), 840, 600),  # the 10-hour outage
        (date(2020, 3, 12), 1440, 0),  # COVID crash
        (date(2025, 1, 1), 1440, 0),  # microsecond timestamps in the source file
    ],
)
def test_replay_stores_exactly_the_exchange_rows(
    replay: SimExchangeServer, real_data: Path, tmp_path: Path, day: date, rows: int, missing: int
) -> None:
    report = ingest(replay.base_url, tmp_path, "BTC/USDT", day)
    assert (report.record.rows, report.record.missing_minutes) == (rows, missing)

    source = read_source_rows(real_data / "binance_btcusdt_1m" / f"BTCUSDT-1m-{day}.csv")
    stored = CandleStore(tmp_path).load("BTC/USDT", Timeframe.M1, day)
    assert len(stored) == len(source) == rows
    scale = 1000 if int(source[0][0]) > 10**14 else 1  # 2025+ files are in microseconds
    for candle, row in zip(stored, source, strict=True):
        assert int(candle.timestamp.timestamp() * 1000) == int(row[0]) // scale
        assert candle.close_time_ms == int(row[6]) // scale
        values = (candle.open, candle.high, candle.low, candle.close, candle.volume,
                  candle.quote_volume, candle.taker_buy_volume, candle.taker_buy_quote_volume)
        expected = (row[1], row[2], row[3], row[4], row[5], row[7], row[9], row[10])
        assert values == tuple(Decimal(v) for v in expected)
        assert candle.trades == int(row[8])


def test_outage_is_recorded_as_missing_range(replay: SimExchangeServer, tmp_path: Path) -> None:
    report = ingest(replay.base_url, tmp_path, "BTC/USDT", date(2019, 5, 15))
    (first, last), = report.record.missing_ranges
    assert datetime.fromtimestamp(first / 1000, tz=UTC) == datetime(2019, 5, 15, 3, 0, tzinfo=UTC)
    assert (last - first) // 60_000 + 1 == 600


def test_gap_in_exchange_data_is_recorded_not_filled(
    sim: SimExchangeServer, tmp_path: Path
) -> None:
    sim.set_faults("missing:symbol=ETHUSDT,start=2024-02-10T10:00,minutes=30")
    report = ingest(sim.base_url, tmp_path, "ETH/USDT", date(2024, 2, 10))
    assert (report.record.rows, report.record.missing_minutes) == (1410, 30)
    start = int(datetime(2024, 2, 10, 10, 0, tzinfo=UTC).timestamp() * 1000)
    assert report.record.missing_ranges == ((start, start + 29 * 60_000),)
    stored = CandleStore(tmp_path).load("ETH/USDT", Timeframe.M1, date(2024, 2, 10))
    stamps = {c.timestamp for c in stored}
    assert datetime(2024, 2, 10, 10, 15, tzinfo=UTC) not in stamps


def test_rematerialising_leaves_identical_bytes(sim: SimExchangeServer, tmp_path: Path) -> None:
    day = date(2024, 2, 11)
    first = ingest(sim.base_url, tmp_path, "BTC/USDT", day)
    before = Path(first.record.path).read_bytes()
    second = ingest(sim.base_url, tmp_path, "BTC/USDT", day)
    assert Path(second.record.path).read_bytes() == before
    assert second.changed is False
    assert second.record.version == first.record.version == 1
    assert second.record.content_hash == first.record.content_hash


def test_malformed_json_is_a_clear_error_and_stores_nothing(
    sim: SimExchangeServer, tmp_path: Path
) -> None:
    sim.set_faults("malformed:path=klines")
    with pytest.raises(ExchangeDataError, match=r"klines|BTCUSDT"):
        ingest(sim.base_url, tmp_path, "BTC/USDT", date(2024, 2, 12))
    assert not list((tmp_path).rglob("ohlcv_1m_*"))
    catalog = MetadataStore(tmp_path / "meta.sqlite")
    assert catalog.list_partitions() == []
