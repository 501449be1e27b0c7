"""Archive files parse into the exact columns REST gives, or fail with the file's name.

Real rows from the Binance archive files the tests hold: a millisecond day (2024-12-31) and a
microsecond day (2025-01-01); a header row and a broken row are added to copies of them.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from helios_pipeline.exchanges.bulk_archive import (
    ArchiveError,
    archive_url,
    parse_archive,
)
from helios_pipeline.sim.binance.archive import HEADER
from helios_pipeline_tests.conftest import KLINES_DIR

URL = "http://archive/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01-01.zip"


def zipped(content: bytes, name: str = "BTCUSDT-1m-2025-01-01.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def lines(day: str) -> list[bytes]:
    return (KLINES_DIR / f"BTCUSDT-1m-{day}.csv").read_bytes().splitlines()


def test_microsecond_and_millisecond_files_give_millisecond_open_and_close_times() -> None:
    micro = parse_archive(URL, zipped(b"\n".join(lines("2025-01-01")[:3])))
    milli = parse_archive(URL, zipped(b"\n".join(lines("2024-12-31")[-2:])))
    first = micro.slice(0, 1).to_pylist()[0]
    assert first["timestamp"] == datetime(2025, 1, 1, tzinfo=UTC)
    assert first["close_time"] == 1735689659999
    assert first["open"] == Decimal("93576.00000000")
    assert first["taker_buy_quote_volume"] == Decimal("369757.32652890")
    assert first["trades"] == 2631
    assert milli.column("close_time").to_pylist()[-1] == 1735689599999


def test_a_header_row_is_skipped_and_rows_come_out_sorted_once_each() -> None:
    rows = lines("2025-01-01")[:3]
    table = parse_archive(URL, zipped(b"\n".join([HEADER, rows[2], rows[0], rows[1], rows[0]])))
    stamps = [t.minute for t in table.column("timestamp").to_pylist()]
    assert stamps == [0, 1, 2]


@pytest.mark.parametrize(("content", "problem"), [
    (zipped(b"1735689600000000,93576.0,1\n"), "not a 12-column kline"),
    (zipped(b"1735689600000000,abc,1,1,1,1,1735689659999999,1,1,1,1,0\n"), "not a 12-column"),
    (zipped(b"\n".join(lines("2025-01-01")[:50]))[:400], "not a readable zip"),
    (b"<html>maintenance</html>", "not a readable zip"),
])
def test_malformed_files_name_the_file(content: bytes, problem: str) -> None:
    with pytest.raises(ArchiveError, match=problem) as caught:
        parse_archive(URL, content)
    assert URL in str(caught.value)


def test_archive_urls_follow_the_binance_layout() -> None:
    from datetime import date

    assert archive_url("https://data.binance.vision/", "BTCUSDT", date(2024, 3, 1), True) == (
        "https://data.binance.vision/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03.zip")
    assert archive_url("http://h", "ETHUSDT", date(2024, 3, 5), False) == (
        "http://h/data/spot/daily/klines/ETHUSDT/1m/ETHUSDT-1m-2024-03-05.zip")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "https://data.binance.vision"),
    ({"HELIOS_BULK_URL": ""}, None),
    ({"HELIOS_BULK_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9"),
    ({"HELIOS_EXCHANGE_URL": "http://127.0.0.1:8"}, None),  # the sim has no real archive
    ({"HELIOS_EXCHANGE_URL": "http://127.0.0.1:8", "HELIOS_BULK_URL": "http://127.0.0.1:8"},
     "http://127.0.0.1:8"),
    ({"HELIOS_EXCHANGE": "okx"}, None),  # no archive in this layout
])
def test_bulk_url_setting(env: dict[str, str], expected: str | None) -> None:
    from helios_pipeline.settings import Settings

    settings = Settings.from_env(env)
    assert settings.bulk_archive_url() == expected
    assert settings.exchange_config().bulk_url == expected
