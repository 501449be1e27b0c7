"""Validation on real Binance data (must validate clean) and on injected faults (quarantined)."""

from __future__ import annotations

import asyncio
import csv
import lzma
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from helios_pipeline.batch.ohlcv import PartitionReport, ingest_ohlcv_day
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.retry import RetryPolicy
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.frames import validate_candle_frame
from helios_pipeline.validation.outcome import validate_kline_rows
from helios_pipeline.validation.rules import Rule

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)
NOW = 2_000_000_000_000  # 2033: every recorded candle has closed
SYMBOL = "BTC/USDT"


def ingest(base_url: str, data_dir: Path, day: date) -> PartitionReport:
    async def run() -> PartitionReport:
        async with ExchangeClient("binance", base_url=base_url, retry=FAST_RETRY) as client:
            return await ingest_ohlcv_day(
                client, CandleStore(data_dir), MetadataStore(data_dir / "meta.sqlite"), SYMBOL, day
            )

    return asyncio.run(run())


@pytest.fixture(scope="module")
def replay(real_data: Path) -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, data_dir=real_data / "binance_btcusdt_1m") as server:
        yield server


def kline_file(path: Path) -> list[list[object]]:
    """Rows of a Binance kline CSV as the REST API sends them (ms times, decimal strings)."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as handle:  # type: ignore[operator]
        rows = list(csv.reader(handle))
    scale = 1000 if int(rows[0][0]) > 10**14 else 1  # 2025+ files are in microseconds
    return [[int(r[0]) // scale, *r[1:6], int(r[6]) // scale, r[7], int(r[8]), *r[9:12]]
            for r in rows]


@pytest.mark.parametrize(
    ("day", "rows", "missing"),
    [
        (date(2017, 8, 17), 1200, 240),  # listing day: illiquid, many zero-volume minutes
        (date(2019, 5, 15), 840, 600),  # 10-hour outage, then a jump after the gap
        (date(2020, 3, 12), 1440, 0),  # COVID crash, 12.4% one-minute ranges
        (date(2025, 1, 1), 1440, 0),
    ],
)
def test_real_days_store_every_row_with_no_hard_failure(
    replay: SimExchangeServer, tmp_path: Path, day: date, rows: int, missing: int
) -> None:
    report = ingest(replay.base_url, tmp_path, day)

    assert (report.record.rows, report.record.missing_minutes) == (rows, missing)
    assert report.quarantined == 0
    assert QuarantineStore(tmp_path).count(SYMBOL, day, day) == 0
    stored = CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, day)
    assert all(c.is_validated for c in stored)
    flags = Counter(f for c in stored for f in c.anomaly_flags)
    assert set(flags) <= {Rule.VOLUME_OUTLIER, Rule.PRICE_JUMP_AFTER_GAP}
    assert sum(1 for c in stored if c.anomaly_flags) == report.soft_flagged
    assert [c.validation_score for c in stored if not c.anomaly_flags] == [1.0] * (
        rows - report.soft_flagged)


@pytest.mark.parametrize("name", ["BTCUSDT-1m-2019-05.csv.xz", "BTCUSDT-1m-2025-01.csv.xz"])
def test_real_months_validate_clean_and_the_engines_agree(real_data: Path, name: str) -> None:
    rows = kline_file(real_data / "binance_btcusdt_1m" / name)

    outcome = validate_kline_rows(rows, SYMBOL, Timeframe.M1, now_ms=NOW, source=name)

    assert outcome.quarantined == []
    assert len(outcome.accepted) == len(rows) > 40_000
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume",
                                        "close_time", "quote_volume", "trades",
                                        "taker_buy_volume", "taker_buy_quote_volume", "ignore"])
    verdicts = validate_candle_frame(frame, Timeframe.M1, now_ms=NOW)
    assert verdicts["hard_rules"].map(len).sum() == 0
    assert verdicts["soft_rules"].tolist() == [c.anomaly_flags for c in outcome.accepted]
    assert verdicts["validation_score"].tolist() == [c.validation_score for c in outcome.accepted]


def test_sim_faults_are_quarantined_with_reasons_and_gaps_stay_gaps(
    sim: SimExchangeServer, tmp_path: Path
) -> None:
    sim.set_faults("spike:symbol=BTCUSDT,at=2024-02-10T12:00,factor=3;"
                   "broken_ohlc:symbol=BTCUSDT,at=2024-02-10T13:00;"
                   "missing:symbol=BTCUSDT,start=2024-02-10T10:00,minutes=30")
    day = date(2024, 2, 10)

    report = ingest(sim.base_url, tmp_path, day)

    assert (report.record.rows, report.record.missing_minutes, report.quarantined) == (
        1408, 30, 2)
    start = datetime(2024, 2, 10, 10, 0, tzinfo=UTC)
    assert report.record.missing_ranges == (
        (datetime_to_ms(start), datetime_to_ms(start) + 29 * 60_000),)
    records = QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, day)
    spike, broken = records
    spiked, bad = spike.values, broken.values  # noqa: PD011 - the record's field, not pandas
    assert spike.timestamp_ms == datetime_to_ms(datetime(2024, 2, 10, 12, 0, tzinfo=UTC))
    assert spike.rules == (Rule.PRICE_JUMP,)
    assert float(spiked["high"]) > 2.5 * float(spiked["low"])
    assert "jump=" in spiked[Rule.PRICE_JUMP]
    assert broken.rules == (Rule.OHLC_INCONSISTENT,)
    assert float(bad["high"]) < max(float(bad["open"]), float(bad["close"]))
    assert broken.source == spike.source
    assert sim.base_url.split("//")[1] in spike.source

    stored = {c.timestamp for c in CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, day)}
    assert datetime(2024, 2, 10, 12, 0, tzinfo=UTC) not in stored
    assert datetime(2024, 2, 10, 12, 1, tzinfo=UTC) in stored  # the spike poisons nothing
    assert datetime(2024, 2, 10, 13, 0, tzinfo=UTC) not in stored


def test_rematerialising_a_faulty_day_is_idempotent(
    sim: SimExchangeServer, tmp_path: Path
) -> None:
    sim.set_faults("spike:symbol=BTCUSDT,at=2024-02-11T08:30,factor=3")
    day = date(2024, 2, 11)
    first = ingest(sim.base_url, tmp_path, day)
    quarantine = QuarantineStore(tmp_path).path(SYMBOL, Timeframe.M1, day)
    before = quarantine.read_bytes(), Path(first.record.path).read_bytes()

    second = ingest(sim.base_url, tmp_path, day)

    assert (quarantine.read_bytes(), Path(second.record.path).read_bytes()) == before
    assert second.record.version == first.record.version == 1
    assert second.quarantined == first.quarantined == 1
    sim.set_faults("")
    third = ingest(sim.base_url, tmp_path, day)
    assert (third.quarantined, third.record.rows, third.record.version) == (0, 1440, 2)
    assert not quarantine.exists()
