"""The storage layout: every path the platform writes comes from storage.paths."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from helios_pipeline.domain.symbols import SymbolError
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage import paths

ROOT = Path("/data")


def test_ohlcv_path_follows_the_documented_layout() -> None:
    got = paths.ohlcv_path(ROOT, "BTC/USDT", Timeframe.M1, date(2024, 1, 31), "parquet")
    assert got == Path("/data/market_data/BTCUSDT/2024/01/ohlcv_1m_20240131.parquet")


@pytest.mark.parametrize(
    ("timeframe", "fmt", "name"),
    [
        (Timeframe.M5, "csv", "ohlcv_5m_20241222.csv"),
        (Timeframe.H4, "parquet", "ohlcv_4h_20241222.parquet"),
        (Timeframe.D1, "csv", "ohlcv_1d_20241222.csv"),
    ],
)
def test_ohlcv_path_names_timeframe_and_format(timeframe: Timeframe, fmt: str, name: str) -> None:
    got = paths.ohlcv_path(ROOT, "eth/usdt", timeframe, date(2024, 12, 22), fmt)  # type: ignore[arg-type]
    assert got == ROOT / "market_data" / "ETHUSDT" / "2024" / "12" / name


def test_exchange_qualifies_the_symbol_folder() -> None:
    got = paths.ohlcv_path(ROOT, "BTC/USDT", Timeframe.M1, date(2024, 3, 5), "csv", "Binance")
    assert got == Path("/data/market_data/binance.BTCUSDT/2024/03/ohlcv_1m_20240305.csv")


def test_ohlcv_paths_lists_the_preferred_format_first() -> None:
    day = date(2024, 1, 1)
    csv_first = paths.ohlcv_paths(ROOT, "BTC/USDT", Timeframe.M1, day, "csv")
    assert [p.suffix for p in csv_first] == [".csv", ".parquet"]
    parquet_first = paths.ohlcv_paths(ROOT, "BTC/USDT", Timeframe.M1, day, "parquet")
    assert [p.suffix for p in parquet_first] == [".parquet", ".csv"]
    assert {p.with_suffix("") for p in csv_first} == {p.with_suffix("") for p in parquet_first}


def test_ticker_path_is_hourly_in_the_month_folder() -> None:
    got = paths.ticker_path(ROOT, "BTC/USDT", datetime(2024, 12, 22, 14, 37, tzinfo=UTC), "csv")
    assert got == Path("/data/market_data/BTCUSDT/2024/12/ticker_20241222_14.csv")


def test_ticker_path_converts_to_utc_across_a_month_boundary() -> None:
    # 01:30 on 1 Feb at UTC+2 is 23:30 on 31 Jan UTC: January's folder, hour 23.
    moment = datetime(2024, 2, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    got = paths.ticker_path(ROOT, "BTC/USDT", moment, "parquet")
    assert got == Path("/data/market_data/BTCUSDT/2024/01/ticker_20240131_23.parquet")


def test_ticker_path_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="Naive datetime"):
        paths.ticker_path(ROOT, "BTC/USDT", datetime(2024, 1, 1, 3), "csv")  # noqa: DTZ001


def test_realtime_and_system_roots() -> None:
    assert paths.realtime_ticker_path(ROOT, "SOL/USDT", "csv") == Path(
        "/data/market_data/SOLUSDT/current/realtime_ticker.csv"
    )
    assert paths.realtime_ohlcv_path(ROOT, "SOL/USDT", Timeframe.M1, "parquet") == Path(
        "/data/market_data/SOLUSDT/current/realtime_ohlcv_1m.parquet"
    )
    assert paths.quarantine_root(ROOT) == Path("/data/quarantine")
    assert paths.quality_reports_root(ROOT) == Path("/data/system/data_quality_reports")


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown storage format 'json'"):
        paths.ohlcv_path(ROOT, "BTC/USDT", Timeframe.M1, date(2024, 1, 1), "json")  # type: ignore[arg-type]
    with pytest.raises(SymbolError):
        paths.ohlcv_path(ROOT, "BTC-USDT", Timeframe.M1, date(2024, 1, 1), "csv")
