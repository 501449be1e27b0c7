"""The bulk-archive path stores exactly what the REST path stores, and falls back file by file.

Against the simulated exchange's archive (``sim.binance.archive``: the real Binance files the
tests hold for BTCUSDT, the seeded market for ETHUSDT, data faults on both paths alike), a range
ingested by ``batch.bulk.ingest_minutes_bulk`` must leave the same 1m files, quarantine and
catalog rows (but for the ``source``) as ``batch.ingest.ingest_minutes`` over REST; every
archive fault sends that file's days to REST with a warning naming the file.
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from helios_pipeline.batch.bulk import (
    BulkReport,
    check_minutes,
    forget_checked_files,
    ingest_minutes_bulk,
    plan_archive,
)
from helios_pipeline.batch.ingest import ingest_minutes
from helios_pipeline.domain.timeframe import day_start_ms
from helios_pipeline.exchanges.bulk_archive import ArchiveFile, BulkArchiveClient
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.conftest import KLINES_DIR
from helios_pipeline_tests.integration.test_range_ingest import files, stores

FAULTY = date(2024, 3, 5)
DATA_FAULTS = (f"spike:symbol=ETHUSDT,at={FAULTY}T12:00,factor=3;"
               f"broken_ohlc:symbol=ETHUSDT,at={FAULTY}T13:00;"
               f"missing:symbol=ETHUSDT,start={FAULTY}T15:00,minutes=30")
MARCH = [date(2024, 3, 4), FAULTY, date(2024, 3, 6)]
MARCH_FILE = "ETHUSDT-1m-2024-03.zip"


@dataclass
class Ingested:
    report: BulkReport | None
    weight: int


@pytest.fixture(autouse=True)
def fresh_archive_files() -> None:
    """Every test downloads and checks its files (a process reuses files it checked)."""
    forget_checked_files()


@pytest.fixture(scope="module")
def venue() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, data_dir=KLINES_DIR, faults=DATA_FAULTS) as server:
        yield server


@pytest.fixture
def archive_faults(venue: SimExchangeServer) -> Iterator[str]:
    """The venue with only its data faults; a test adds archive faults to this spec."""
    venue.set_faults(DATA_FAULTS)
    yield DATA_FAULTS
    venue.set_faults(DATA_FAULTS)


def by_archive(venue: SimExchangeServer, root: Path, symbol: str, days: list[date]) -> Ingested:
    async def run() -> Ingested:
        async with (ExchangeClient("binance", base_url=venue.base_url) as client,
                    BulkArchiveClient(venue.base_url) as archive):
            _, report = await ingest_minutes_bulk(client, archive, stores(root), symbol, days)
            return Ingested(report, client.limiter.weight_spent)

    return asyncio.run(run())


def by_rest(venue: SimExchangeServer, root: Path, symbol: str, days: list[date]) -> Ingested:
    async def run() -> Ingested:
        async with ExchangeClient("binance", base_url=venue.base_url) as client:
            await ingest_minutes(client, stores(root), symbol, days)
            return Ingested(None, client.limiter.weight_spent)

    return asyncio.run(run())


def faulty_archive_stores_what_rest_stores(venue: SimExchangeServer, archive_faults: str,
                                           root: Path, fault: str, days: list[date]) -> BulkReport:
    """ETH/USDT ``days`` by the archive with ``fault`` added, then by REST without it.

    Asserts both leave the same files; returns the archive path's report.
    """
    venue.set_faults(f"{archive_faults};{fault}")
    bulk = by_archive(venue, root / "bulk", "ETH/USDT", days)
    venue.set_faults(archive_faults)
    by_rest(venue, root / "rest", "ETH/USDT", days)
    assert files(root / "bulk") == files(root / "rest")
    assert bulk.report is not None
    return bulk.report


def catalog_without_source(root: Path) -> list[tuple[object, ...]]:
    from helios_pipeline.storage.metadata import MetadataStore

    return [(r.symbol, r.timeframe, r.day, r.version, r.rows, r.missing_minutes,
             r.missing_ranges, r.content_hash, r.quarantined)
            for r in MetadataStore(root / "metadata.sqlite").list_partitions()]


def sources(root: Path) -> dict[date, str]:
    from helios_pipeline.storage.metadata import MetadataStore

    return {r.day: r.source for r in MetadataStore(root / "metadata.sqlite").list_partitions()}


@pytest.mark.parametrize(("symbol", "days", "archive_files"), [
    ("BTC/USDT", [date(2019, 5, 14), date(2019, 5, 15)], 1),  # real month: a 10-hour outage
    ("BTC/USDT", [date(2024, 12, 31), date(2025, 1, 1)], 2),  # real: ms, then microseconds
    ("ETH/USDT", MARCH, 1),  # seeded month with a spike, a broken candle and a gap
])
def test_archive_path_stores_exactly_what_rest_stores(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path, symbol: str,
    days: list[date], archive_files: int,
) -> None:
    bulk = by_archive(venue, tmp_path / "bulk", symbol, days)
    by_rest(venue, tmp_path / "rest", symbol, days)
    assert files(tmp_path / "bulk") == files(tmp_path / "rest")
    assert catalog_without_source(tmp_path / "bulk") == catalog_without_source(tmp_path / "rest")
    assert bulk.report is not None
    assert (bulk.report.files, bulk.report.rest_days, bulk.report.fallbacks) == (
        archive_files, [], [])
    archived = sources(tmp_path / "bulk")
    assert set(archived) == set(days)
    assert all(s.startswith("archive http://") and " sha256=" in s for s in archived.values())
    assert all(s.startswith("binance@") for s in sources(tmp_path / "rest").values())
    assert bulk.weight == bulk.report.rest_weight  # markets, cross-checks, exact re-fetches


def test_a_month_of_archive_spends_only_the_cross_check_weight(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path
) -> None:
    june = [date(2024, 6, 1) + timedelta(days=i) for i in range(30)]
    bulk = by_archive(venue, tmp_path / "bulk", "SOL/USDT", june)
    rest = by_rest(venue, tmp_path / "rest", "SOL/USDT", june)
    assert files(tmp_path / "bulk") == files(tmp_path / "rest")
    markets = 20  # exchangeInfo, on both paths
    assert bulk.weight == markets + 3 * 2  # first, last and a random minute: 3 klines requests
    assert rest.weight == markets + 44 * 2  # 43,200 candles in pages of 1,000


@pytest.mark.parametrize(("fault", "reason"), [
    (f"archive_checksum:path={MARCH_FILE}", "checksum mismatch"),
    (f"archive_404:path={MARCH_FILE}", "not published (404)"),
    (f"truncated:path={MARCH_FILE}", "checksum mismatch"),
    (f"http5xx:status=503,path={MARCH_FILE}", "HTTP 503"),
    (f"archive_drift:path={MARCH_FILE}", "differs from REST"),
])
def test_each_fault_falls_back_to_rest_with_a_warning(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path, fault: str, reason: str,
) -> None:
    report = faulty_archive_stores_what_rest_stores(venue, archive_faults, tmp_path, fault, MARCH)
    [fallback] = report.fallbacks
    assert fallback.url.endswith(f"/data/spot/monthly/klines/ETHUSDT/1m/{MARCH_FILE}")
    assert reason in fallback.reason
    assert MARCH_FILE in fallback.message()
    assert "fetched through REST" in fallback.message()
    assert report.rest_days == MARCH
    assert all(s.startswith("binance@") for s in sources(tmp_path / "bulk").values())
    assert bool(report.mismatches) == fault.startswith("archive_drift")


def test_drift_names_the_minute_and_the_values(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path
) -> None:
    venue.set_faults(f"{archive_faults};archive_drift:path={MARCH_FILE}")
    bulk = by_archive(venue, tmp_path, "ETH/USDT", MARCH)
    assert bulk.report is not None
    assert len(bulk.report.mismatches) == 3  # first, last and the random minute all differ
    first = bulk.report.mismatches[0]
    assert first.minute == datetime(2024, 3, 1, tzinfo=UTC)
    assert first.archive is not None
    assert first.rest is not None
    assert first.archive["volume"] == 2 * first.rest["volume"]  # type: ignore[operator]
    assert "volume archive=" in first.message()


@pytest.mark.parametrize("fault", ["archive_header", "archive_us"])
def test_header_rows_and_microseconds_are_read_not_refused(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path, fault: str
) -> None:
    report = faulty_archive_stores_what_rest_stores(venue, archive_faults, tmp_path,
                                                    f"{fault}:path={MARCH_FILE}", MARCH)
    assert (report.fallbacks, report.files) == ([], 1)
    assert venue.stats()["faults_fired"][fault] >= 1


def test_closed_days_of_the_current_month_come_from_daily_files(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path
) -> None:
    yesterday = datetime.now(tz=UTC).date() - timedelta(days=1)
    bulk = by_archive(venue, tmp_path / "bulk", "ETH/USDT", [yesterday])
    by_rest(venue, tmp_path / "rest", "ETH/USDT", [yesterday])
    assert files(tmp_path / "bulk") == files(tmp_path / "rest")
    assert bulk.report is not None
    assert (bulk.report.files, bulk.report.rest_days) == (1, [])
    [source] = sources(tmp_path / "bulk").values()
    today = yesterday + timedelta(days=1)
    kind = "daily" if yesterday.month == today.month else "monthly"
    assert f"/data/spot/{kind}/klines/ETHUSDT/1m/" in source


def closed_days_of_this_month() -> list[date]:
    """Up to two closed days of the current UTC month (served by daily files)."""
    today = datetime.now(tz=UTC).date()
    days = [d for d in (today - timedelta(days=2), today - timedelta(days=1))
            if d.month == today.month]
    if not days:
        pytest.skip("the current month has no closed day yet (today is the 1st)")
    return days


def test_the_months_daily_files_are_cross_checked_together(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path
) -> None:
    days = closed_days_of_this_month()
    bulk = by_archive(venue, tmp_path, "ETH/USDT", days)
    assert bulk.report is not None
    assert (bulk.report.files, bulk.report.fallbacks, bulk.report.mismatches) == (len(days), [], [])
    markets = 20
    assert bulk.weight == markets + 3 * 2  # three minutes for the month's daily files, not per file


def test_a_daily_file_that_differs_sends_the_months_daily_files_to_rest(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path
) -> None:
    days = closed_days_of_this_month()
    first_file = f"ETHUSDT-1m-{days[0]:%Y-%m-%d}.zip"  # its first minute is always compared
    report = faulty_archive_stores_what_rest_stores(venue, archive_faults, tmp_path,
                                                    f"archive_drift:path={first_file}", days)
    assert report.rest_days == days
    assert report.mismatches[0].url.endswith(f"/daily/klines/ETHUSDT/1m/{first_file}")
    assert report.mismatches[0].minute == datetime.combine(days[0], datetime.min.time(), UTC)
    assert [f.days for f in report.fallbacks] == [(d,) for d in days]
    assert all("daily files differ from REST" in f.message() for f in report.fallbacks)
    assert all(s.startswith("binance@") for s in sources(tmp_path / "bulk").values())


def test_check_minutes_spans_the_files_in_order() -> None:
    def day_file(day: date) -> ArchiveFile:
        opens = [day_start_ms(day) + 60_000 * i for i in range(1440)]
        table = pa.table({"timestamp": pa.array(opens, pa.int64()).cast(pa.timestamp("ms", "UTC"))})
        return ArchiveFile(f"https://x/ETHUSDT-1m-{day}.zip", "0" * 64, table)

    a, b = day_file(date(2024, 3, 4)), day_file(date(2024, 3, 5))
    picked = check_minutes([a, b])
    assert picked[0] == (day_start_ms(date(2024, 3, 4)), a)
    assert picked[-1] == (day_start_ms(date(2024, 3, 6)) - 60_000, b)
    assert len(picked) == 3
    assert check_minutes([a, b]) == picked  # seeded: the same minutes every time
    alone = check_minutes([a])  # a monthly file is checked alone: its own first and last
    assert (alone[0], alone[-1]) == ((day_start_ms(date(2024, 3, 4)), a),
                                     (day_start_ms(date(2024, 3, 5)) - 60_000, a))


def test_plan_takes_closed_months_whole_and_the_current_month_by_day() -> None:
    today = date(2026, 12, 7)
    days = [date(2026, 11, 29) + timedelta(days=i) for i in range(8)]  # 11-29 .. 12-06
    plans, rest = plan_archive(days, today)
    assert [(p.first, p.monthly, len(p.days)) for p in plans] == [
        (date(2026, 11, 1), True, 2),
        *((date(2026, 12, d), False, 1) for d in range(1, 7)),
    ]
    assert rest == []
    last = calendar.monthrange(2026, 12)[1]
    _, rest = plan_archive([date(2026, 12, last)], today)
    assert rest == [date(2026, 12, last)]


def test_a_month_straddled_by_two_chunks_is_downloaded_and_checked_once(
    venue: SimExchangeServer, archive_faults: str, tmp_path: Path
) -> None:
    venue.reset()
    first = by_archive(venue, tmp_path, "ETH/USDT", [date(2024, 3, 29), date(2024, 3, 30)])
    second = by_archive(venue, tmp_path, "ETH/USDT", [date(2024, 3, 31), date(2024, 4, 1)])
    requests = venue.stats()["requests"]
    assert requests[f"/data/spot/monthly/klines/ETHUSDT/1m/{MARCH_FILE}"] == 1
    assert requests["/data/spot/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2024-04.zip"] == 1
    assert first.report is not None
    assert second.report is not None
    assert second.report.files == 2
    markets = 20
    assert (first.weight, second.weight) == (markets + 6, markets + 6)  # April's cross-check
