"""The storage layout: the only module that knows where files live under the data root.

Layout (``data_dir`` is ``Settings.data_dir``, ``local/data`` by default)::

    {data_dir}/market_data/{STORAGE_ID}/{YYYY}/{MM}/ohlcv_{tf}_{YYYYMMDD}.{parquet|csv}
    {data_dir}/market_data/{STORAGE_ID}/{YYYY}/{MM}/ticker_{YYYYMMDD}_{HH}.{parquet|csv}
    {data_dir}/market_data/{STORAGE_ID}/current/realtime_ticker.{parquet|csv}
    {data_dir}/market_data/{STORAGE_ID}/current/realtime_ohlcv_{tf}.{parquet|csv}
    {data_dir}/quarantine/
    {data_dir}/system/data_quality_reports/

``STORAGE_ID`` comes from :func:`helios_pipeline.domain.symbols.to_storage_id` (``BTCUSDT``, or
``binance.BTCUSDT`` when an exchange is given). Every other module asks these functions for a path
instead of formatting one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from helios_pipeline.domain.formats import FILE_FORMATS, StorageFormat
from helios_pipeline.domain.symbols import to_storage_id
from helios_pipeline.domain.timeframe import Timeframe

MARKET_DATA = "market_data"
CURRENT = "current"
QUARANTINE = "quarantine"
SYSTEM = "system"
DATA_QUALITY_REPORTS = "data_quality_reports"


def market_data_root(data_dir: Path) -> Path:
    """Folder holding one sub-folder per storage id."""
    return data_dir / MARKET_DATA


def symbol_dir(data_dir: Path, symbol: str, exchange: str | None = None) -> Path:
    """Folder of one symbol (``market_data/BTCUSDT``).

    Args:
        data_dir: Data root.
        symbol: ccxt unified symbol, ``BTC/USDT``.
        exchange: When given, the folder is exchange-qualified (``binance.BTCUSDT``).

    Raises:
        SymbolError: ``symbol`` is not a unified symbol.
    """
    return market_data_root(data_dir) / to_storage_id(symbol, exchange)


def month_dir(data_dir: Path, symbol: str, day: date, exchange: str | None = None) -> Path:
    """Folder of the month that contains ``day`` (``market_data/BTCUSDT/2024/01``)."""
    return symbol_dir(data_dir, symbol, exchange) / f"{day.year:04d}" / f"{day.month:02d}"


def ohlcv_path(
    data_dir: Path,
    symbol: str,
    timeframe: Timeframe,
    day: date,
    fmt: StorageFormat,
    exchange: str | None = None,
) -> Path:
    """Daily candle partition, ``.../2024/01/ohlcv_1m_20240131.parquet``.

    Args:
        data_dir: Data root.
        symbol: ccxt unified symbol.
        timeframe: Candle length; its value (``1m``) is part of the name.
        day: UTC day the partition covers.
        fmt: ``parquet`` or ``csv``; the file extension.
        exchange: Exchange-qualifies the symbol folder when given.
    """
    return month_dir(data_dir, symbol, day, exchange) / ohlcv_file_name(timeframe, day, fmt)


def ohlcv_file_name(timeframe: Timeframe, day: date, fmt: StorageFormat) -> str:
    """Name of a daily candle partition inside its month folder, ``ohlcv_1m_20240131.parquet``."""
    return f"ohlcv_{timeframe.value}_{day:%Y%m%d}.{_extension(fmt)}"


def ohlcv_paths(
    data_dir: Path,
    symbol: str,
    timeframe: Timeframe,
    day: date,
    prefer: StorageFormat,
    exchange: str | None = None,
) -> tuple[Path, ...]:
    """Every path a daily candle partition may have, the ``prefer`` format first."""
    order = (prefer, *(f for f in FILE_FORMATS if f != prefer))
    return tuple(ohlcv_path(data_dir, symbol, timeframe, day, f, exchange) for f in order)


def ticker_path(
    data_dir: Path, symbol: str, hour: datetime, fmt: StorageFormat, exchange: str | None = None
) -> Path:
    """Hourly ticker partition, ``.../2024/01/ticker_20240131_14.parquet``.

    Args:
        data_dir: Data root.
        symbol: ccxt unified symbol.
        hour: Any tz-aware moment inside the hour; it is converted to UTC.
        fmt: ``parquet`` or ``csv``.
        exchange: Exchange-qualifies the symbol folder when given.

    Raises:
        ValueError: ``hour`` is naive.
    """
    if hour.tzinfo is None:
        raise ValueError(f"Naive datetime {hour.isoformat()}: give a tz-aware (UTC) datetime.")
    utc = hour.astimezone(UTC)
    name = f"ticker_{utc:%Y%m%d}_{utc:%H}.{_extension(fmt)}"
    return month_dir(data_dir, symbol, utc.date(), exchange) / name


def realtime_ticker_path(
    data_dir: Path, symbol: str, fmt: StorageFormat, exchange: str | None = None
) -> Path:
    """Rolling one-hour ticker file, ``market_data/BTCUSDT/current/realtime_ticker.csv``."""
    return symbol_dir(data_dir, symbol, exchange) / CURRENT / f"realtime_ticker.{_extension(fmt)}"


def realtime_ohlcv_path(
    data_dir: Path,
    symbol: str,
    timeframe: Timeframe,
    fmt: StorageFormat,
    exchange: str | None = None,
) -> Path:
    """Rolling live-candle file, ``market_data/BTCUSDT/current/realtime_ohlcv_1m.csv``."""
    name = f"realtime_ohlcv_{timeframe.value}.{_extension(fmt)}"
    return symbol_dir(data_dir, symbol, exchange) / CURRENT / name


def quarantine_root(data_dir: Path) -> Path:
    """Folder for rejected rows and the reasons they were rejected."""
    return data_dir / QUARANTINE


def quality_reports_root(data_dir: Path) -> Path:
    """Folder for data-quality reports."""
    return data_dir / SYSTEM / DATA_QUALITY_REPORTS


def quality_report_path(data_dir: Path, day: date) -> Path:
    """The data-quality report of ``day``: ``.../data_quality_report_YYYYMMDD.html``."""
    return quality_reports_root(data_dir) / f"data_quality_report_{day:%Y%m%d}.html"


def _extension(fmt: StorageFormat) -> str:
    if fmt not in FILE_FORMATS:
        raise ValueError(f"Unknown storage format {fmt!r}; expected 'parquet' or 'csv'.")
    return fmt


def metadata_path(data_dir: Path) -> Path:
    """SQLite metadata database: markets, trading rules, configs, partition catalog."""
    return data_dir / "metadata.sqlite"


def quarantine_month_dir(
    data_dir: Path, symbol: str, day: date, exchange: str | None = None
) -> Path:
    """Quarantine folder of the month that contains ``day`` (``quarantine/BTCUSDT/2024/01``)."""
    storage_id = to_storage_id(symbol, exchange)
    return quarantine_root(data_dir) / storage_id / f"{day.year:04d}" / f"{day.month:02d}"


def quarantine_ohlcv_path(
    data_dir: Path, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
) -> Path:
    """Rejected candles of one batch partition, ``.../2024/01/ohlcv_1m_20240131.jsonl``."""
    name = f"ohlcv_{timeframe.value}_{day:%Y%m%d}.jsonl"
    return quarantine_month_dir(data_dir, symbol, day, exchange) / name


def quarantine_live_path(
    data_dir: Path, symbol: str, day: date, exchange: str | None = None
) -> Path:
    """Rejected realtime points of one UTC day (appended), ``.../2024/01/live_20240131.jsonl``."""
    return quarantine_month_dir(data_dir, symbol, day, exchange) / f"live_{day:%Y%m%d}.jsonl"


def wal_dir(data_dir: Path, name: str = "hot") -> Path:
    """Write-ahead log of a realtime writer (``storage.hot.wal``), ``system/wal/hot``."""
    return data_dir / SYSTEM / "wal" / name


def divergence_path(data_dir: Path, symbol: str, reference: str, day: date) -> Path:
    """Minutes where two venues' closes diverged, ``.../2024/01/divergence_okx_20240131.csv``."""
    return month_dir(data_dir, symbol, day) / f"divergence_{reference}_{day:%Y%m%d}.csv"


def indicators_path(data_dir: Path, symbol: str, timeframe: Timeframe, day: date) -> Path:
    """Indicator columns of a day's candles, ``.../2024/01/indicators_1h_20240131.parquet``."""
    return month_dir(data_dir, symbol, day) / f"indicators_{timeframe.value}_{day:%Y%m%d}.parquet"


def regime_path(data_dir: Path, symbol: str, day: date) -> Path:
    """Regime of each 1h bar of a day, ``.../2024/01/market_regime_20240131.parquet``."""
    return month_dir(data_dir, symbol, day) / f"market_regime_{day:%Y%m%d}.parquet"


def grid_path(data_dir: Path, symbol: str, day: date) -> Path:
    """The grid suggested at the end of a day, ``.../2024/01/grid_levels_20240131.json``."""
    return month_dir(data_dir, symbol, day) / f"grid_levels_{day:%Y%m%d}.json"
