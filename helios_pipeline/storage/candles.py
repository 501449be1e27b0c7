"""Warm-tier candle partitions: one file per symbol, timeframe and UTC day, exact to the digit.

:class:`CandleStore` writes ``OHLCVData`` lists as Parquet (default) or CSV files at the paths
``storage.paths`` gives, and reads them back in either format. Money is never rounded: the decimal
columns are ``decimal128(38, 18)`` in Parquet and the exchange's plain decimal strings in CSV, and
a value that does not fit (more than 18 decimal places or 20 integer digits) is an error.

Writes are atomic (``storage.atomic``) and idempotent: the bytes depend only on the candles (no
wall-clock metadata, fixed writer options), so storing the same candles again yields an identical
file, and an identical file is not rewritten. The bytes are stable for a given pyarrow version;
the ``created_by`` field of a Parquet footer names that version.

The encoding (schema, Parquet/CSV bytes, readers) is in ``storage.candle_codec``. A file holds
the exchange's data (``domain.columns.OHLCV_COLUMNS``) and each candle's validation outcome
(``VALIDATION_COLUMNS``: ``is_validated``, ``validation_score``, ``anomaly_flags``), so what
validation decided travels with the candles it decided on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from operator import attrgetter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from helios_pipeline.domain.columns import (
    CANDLE_FILE_COLUMNS,
    CLOSE_TIME,
    DECIMAL_COLUMNS,
    TIMESTAMP,
    TRADES,
    VALIDATION_COLUMNS,
)
from helios_pipeline.domain.formats import FILE_FORMATS, StorageFormat
from helios_pipeline.domain.gaps import missing_ranges
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.symbols import normalize_symbol, to_storage_id
from helios_pipeline.domain.timeframe import (
    DAY_MS,
    Timeframe,
    datetime_to_ms,
    day_start_ms,
    days_between,
    ms_to_datetime,
)
from helios_pipeline.storage.atomic import write_atomic
from helios_pipeline.storage.candle_codec import (
    Columns,
    PartitionError,
    PrecisionError,
    csv_bytes,
    parquet_bytes,
    read_csv_columns,
    read_parquet,
    read_table,
    read_table_bytes,
    table_columns,
    to_frame,
    to_table,
)
from helios_pipeline.storage.paths import month_dir, ohlcv_file_name, ohlcv_path, ohlcv_paths
from helios_pipeline.storage.versions import DEFAULT_KEEP, VersionStore

__all__ = [
    "OHLCV_SCHEMA",
    "CandleStore",
    "PartitionError",
    "PartitionNotFoundError",
    "PrecisionError",
    "StoredPartition",
]


class PartitionNotFoundError(FileNotFoundError):
    """No file exists for the requested partition."""


@dataclass(frozen=True, slots=True)
class StoredPartition:
    """Outcome of :meth:`CandleStore.store`.

    Attributes:
        path: File the partition lives in.
        rows: Number of candles.
        content_hash: SHA-256 (hex) of the file bytes.
        changed: False when the file already held exactly these bytes and was left untouched.
        first_ts_ms: Open time of the first candle; ``None`` for an empty day.
        last_ts_ms: Open time of the last candle; ``None`` for an empty day.
        missing_ranges: Absent candle open times of the whole UTC day as
            ``(first_ms, last_ms)`` pairs, from :func:`helios_pipeline.domain.gaps.missing_ranges`.
    """

    path: Path
    rows: int
    content_hash: str
    changed: bool
    first_ts_ms: int | None
    last_ts_ms: int | None
    missing_ranges: tuple[tuple[int, int], ...]


class CandleStore:
    """Daily candle partitions under ``{data_dir}/market_data``.

    Args:
        data_dir: Data root (``Settings.data_dir``).
        fmt: Format new partitions are written in. Reads accept both formats; when a day exists
            in both (a CSV mirror), the configured format is read.
        keep_versions: Earlier contents kept per partition when a write changes it
            (``storage.versions``).
    """

    def __init__(self, data_dir: Path | str, fmt: StorageFormat = "parquet",
                 keep_versions: int = DEFAULT_KEEP) -> None:
        self._data_dir = Path(data_dir)
        if fmt not in FILE_FORMATS:
            raise ValueError(f"Unknown storage format {fmt!r}; expected 'parquet' or 'csv'.")
        self._fmt: StorageFormat = fmt
        self.versions = VersionStore(self._data_dir, keep_versions)

    @property
    def data_dir(self) -> Path:
        """Data root the partitions live under."""
        return self._data_dir

    @property
    def fmt(self) -> StorageFormat:
        """Format new partitions are written in."""
        return self._fmt

    def path(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> Path:
        """File :meth:`store` writes for this partition (in the configured format)."""
        return ohlcv_path(self._data_dir, symbol, timeframe, day, self._fmt, exchange)

    def find(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> Path | None:
        """Existing file of this partition in either format (configured one first), or None."""
        for path in ohlcv_paths(self._data_dir, symbol, timeframe, day, self._fmt, exchange):
            if path.is_file():
                return path
        return None

    def find_many(
        self, symbol: str, timeframe: Timeframe, days: Sequence[date], exchange: str | None = None
    ) -> dict[date, Path]:
        """:meth:`find` of many days, listing each month folder once instead of a stat per day."""
        found: dict[date, Path] = {}
        order = (self._fmt, *(f for f in FILE_FORMATS if f != self._fmt))
        for _, group in groupby(days, key=lambda d: (d.year, d.month)):
            month = list(group)
            folder = month_dir(self._data_dir, symbol, month[0], exchange)
            try:
                with os.scandir(folder) as entries:
                    names = {entry.name for entry in entries}
            except (FileNotFoundError, NotADirectoryError):
                continue
            for day in month:
                name = next((n for n in (ohlcv_file_name(timeframe, day, f) for f in order)
                             if n in names), None)
                if name is not None:
                    found[day] = folder / name
        return found

    def store(
        self,
        symbol: str,
        timeframe: Timeframe,
        day: date,
        candles: Sequence[OHLCVData],
        exchange: str | None = None,
    ) -> StoredPartition:
        """Write the candles of one UTC day as one file, atomically and idempotently.

        The file is sorted by open time whatever the input order. An empty ``candles`` still
        writes a valid file with the full schema and no rows: "the exchange had no candles that
        day" is a fact worth recording, distinct from "never fetched" (no file).

        Args:
            symbol: ccxt unified symbol; every candle must be for it.
            timeframe: Candle length; every candle must have it.
            day: UTC day; every candle must open inside it, aligned to ``timeframe``.
            candles: The day's candles, any order, at most one per open time.
            exchange: Exchange-qualifies the storage folder when given.

        Returns:
            Where the file is, its row count and hash, and whether it was (re)written.

        Raises:
            PartitionError: A candle is for another symbol, timeframe or day, is misaligned, or
                two candles share an open time (the message names symbol, day and timestamp).
            PrecisionError: A decimal would lose a digit in ``decimal128(38, 18)``.
        """
        where = f"{symbol} {timeframe.value} {day.isoformat()}"
        ordered, open_times = _ordered(candles, symbol, timeframe, day, where)
        columns = _columns(ordered, open_times)
        table = to_table(columns, where)  # also proves every value fits the schema, for CSV too
        data = parquet_bytes(table) if self._fmt == "parquet" else csv_bytes(columns)
        return self._write(self.path(symbol, timeframe, day, exchange), data, open_times,
                           timeframe, day)

    def store_table(
        self, symbol: str, timeframe: Timeframe, day: date, table: pa.Table,
        exchange: str | None = None,
    ) -> StoredPartition:
        """:meth:`store` for candles already in an Arrow table (the bulk ingest path).

        The same bytes as :meth:`store` of the same candles. Parquet only: a CSV partition keeps
        the exchange's decimal text, which a ``decimal128`` column no longer has.

        Args:
            symbol: ccxt unified symbol (names the folder; the table has no symbol column).
            timeframe: Candle length.
            day: UTC day; every open time must be inside it and on the timeframe's grid.
            table: Candles with :data:`~helios_pipeline.domain.schema.OHLCV_SCHEMA`, sorted by
                open time, one per open time.
            exchange: Exchange-qualifies the storage folder when given.

        Raises:
            PartitionError: Wrong schema, unsorted or duplicate open times, or an open time
                outside the day or off the grid.
            ValueError: The store writes CSV.
        """
        if self._fmt != "parquet":
            raise ValueError(f"store_table writes Parquet; this store writes {self._fmt}: use "
                             "store() with OHLCVData, which keeps the exchange's decimal text.")
        where = f"{symbol} {timeframe.value} {day.isoformat()}"
        if not table.schema.equals(OHLCV_SCHEMA):
            raise PartitionError(f"{where}: the table does not have the candle schema.")
        times = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
        if times.size > 1 and not bool(np.all(times[1:] > times[:-1])):
            raise PartitionError(f"{where}: open times are not strictly increasing.")
        start = day_start_ms(day)
        if times.size and (times[0] < start or times[-1] >= start + DAY_MS
                           or bool(np.any(times % timeframe.ms))):
            raise PartitionError(f"{where}: an open time is outside the day or off the "
                                 f"{timeframe.value} grid.")
        return self._write(self.path(symbol, timeframe, day, exchange), parquet_bytes(table),
                           times.tolist(), timeframe, day)

    def _write(self, path: Path, data: bytes, open_times: list[int], timeframe: Timeframe,
               day: date) -> StoredPartition:
        changed = self._write_if_changed(path, data)
        return StoredPartition(
            path=path,
            rows=len(open_times),
            content_hash=hashlib.sha256(data).hexdigest(),
            changed=changed,
            first_ts_ms=open_times[0] if open_times else None,
            last_ts_ms=open_times[-1] if open_times else None,
            missing_ranges=tuple(_missing(open_times, timeframe, day)),
        )

    def load(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> list[OHLCVData]:
        """Candles of one stored day, exact Decimals and tz-aware UTC open times.

        Values compare equal to what was stored. From CSV they keep the exact text written
        (``93576.00000000``); from Parquet they carry the column's 18 decimal places
        (``93576.000000000000000000``), the same number.

        Raises:
            PartitionNotFoundError: No file for the day in either format.
            PartitionError: The file is not a candle partition of this layout.
        """
        path = self._existing(symbol, timeframe, day, exchange)
        if path.suffix == ".csv":
            columns = read_csv_columns(path)
            to_table(columns, str(path))  # the checks a Parquet file gets from its schema
        else:
            columns = table_columns(read_parquet(path))
        return candles_of(columns, normalize_symbol(symbol), timeframe)

    def load_table(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> pa.Table:
        """One stored day as an Arrow table with :data:`OHLCV_SCHEMA`, whatever the file format.

        Raises:
            PartitionNotFoundError: No file for the day in either format.
            PartitionError: The file is not a candle partition of this layout.
        """
        return read_table(self._existing(symbol, timeframe, day, exchange))

    def load_frame(
        self,
        symbol: str,
        timeframe: Timeframe,
        start: date,
        end: date,
        exchange: str | None = None,
        as_float: bool = False,
    ) -> pd.DataFrame:
        """Candles of the days ``start`` to ``end`` (both included) as one DataFrame.

        Days without a file are skipped (not filled). The index is the tz-aware UTC open time,
        named ``timestamp``; ``trades`` and ``close_time`` are nullable ``Int64``.

        Args:
            symbol: ccxt unified symbol.
            timeframe: Candle length.
            start: First day.
            end: Last day.
            exchange: Exchange-qualified storage folder when given.
            as_float: Decimal columns as ``float64`` (for speed, inexact) instead of ``Decimal``
                objects.
        """
        tables = []
        for day in days_between(start, end):
            path = self.find(symbol, timeframe, day, exchange)
            if path is not None:
                tables.append(read_table(path))
        table = pa.concat_tables(tables) if tables else OHLCV_SCHEMA.empty_table()
        return to_frame(table, as_float)

    def _write_if_changed(self, path: Path, data: bytes) -> bool:
        """Write ``data`` atomically unless ``path`` already holds exactly these bytes.

        Different bytes replace the file only after its current content is kept as an earlier
        version.
        """
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        self.versions.keep_current(path)
        write_atomic(path, data)
        return True

    def load_version(self, record_path: Path, content_hash: str) -> pa.Table:
        """The content of one catalog version of a partition, current or kept.

        Args:
            record_path: The partition's file (``PartitionRecord.path``).
            content_hash: The version's content hash.

        Raises:
            VersionNotKeptError: The version is neither current nor kept.
        """
        with contextlib.suppress(FileNotFoundError):
            data = record_path.read_bytes()
            if hashlib.sha256(data).hexdigest() == content_hash:
                return read_table_bytes(data, record_path.suffix)
        data = self.versions.load_bytes(record_path, content_hash)
        return read_table_bytes(data, record_path.suffix)

    def _existing(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None
    ) -> Path:
        path = self.find(symbol, timeframe, day, exchange)
        if path is None:
            looked = ", ".join(
                str(p) for p in ohlcv_paths(self._data_dir, symbol, timeframe, day, self._fmt,
                                            exchange)
            )
            raise PartitionNotFoundError(
                f"No {timeframe.value} candles stored for {symbol} on {day}; looked for {looked}."
            )
        return path


def _ordered(
    candles: Sequence[OHLCVData], symbol: str, timeframe: Timeframe, day: date, where: str
) -> tuple[Sequence[OHLCVData], list[int]]:
    """Candles sorted by open time with their open times (ms), after every partition check."""
    _check_identity(candles, symbol, timeframe, where)
    try:
        open_times = [datetime_to_ms(c.timestamp) for c in candles]
    except ValueError as exc:
        raise PartitionError(f"{where}: {exc}") from None
    times = np.asarray(open_times, dtype=np.int64)
    if not bool(np.all(times[1:] > times[:-1])):
        order = np.argsort(times, kind="stable")
        candles = [candles[i] for i in order.tolist()]
        times = times[order]
        same = np.flatnonzero(times[1:] == times[:-1])
        if same.size:
            ts = int(times[same[0]])
            raise PartitionError(
                f"{where}: two candles open at {ms_to_datetime(ts).isoformat()} ({ts}); "
                "a partition holds one candle per open time."
            )
        open_times = times.tolist()
    _check_window(candles, times, timeframe, day, where)
    return candles, open_times


def _check_identity(
    candles: Sequence[OHLCVData], symbol: str, timeframe: Timeframe, where: str
) -> None:
    expected = to_storage_id(symbol)
    for other in {c.symbol for c in candles}:
        if to_storage_id(other) != expected:
            raise PartitionError(f"{where}: a candle is for {other!r}, not {symbol!r}.")
    others = sorted(tf.value for tf in {c.timeframe for c in candles} - {timeframe})
    if others:
        raise PartitionError(f"{where}: candles have timeframe {others}, not {timeframe.value}.")


def _check_window(
    candles: Sequence[OHLCVData], times: npt.NDArray[np.int64], timeframe: Timeframe, day: date,
    where: str,
) -> None:
    """Sorted open times must lie in the UTC day and on the timeframe's grid, to the microsecond."""
    start = day_start_ms(day)
    outside = np.flatnonzero((times < start) | (times >= start + DAY_MS))
    if outside.size:
        ts = int(times[outside[0]])
        raise PartitionError(
            f"{where}: candle at {ms_to_datetime(ts).isoformat()} ({ts}) is outside that UTC day."
        )
    # Whole-minute timeframes: a sub-millisecond part would be lost by the ms conversion.
    off_grid = np.flatnonzero(times % timeframe.ms)
    row = int(off_grid[0]) if off_grid.size else next(
        (i for i, c in enumerate(candles) if c.timestamp.microsecond), None
    )
    if row is not None:
        raise PartitionError(
            f"{where}: candle at {candles[row].timestamp.isoformat()} is not aligned to "
            f"{timeframe.value} open times."
        )


def candle_columns(candles: Sequence[OHLCVData]) -> Columns:
    """Column values of candles (sorted by the caller), as ``candle_codec.to_table`` takes them."""
    return _columns(candles, [datetime_to_ms(c.timestamp) for c in candles])


def _columns(candles: Sequence[OHLCVData], open_times: list[int]) -> Columns:
    columns: Columns = {TIMESTAMP: open_times}
    for name in (*DECIMAL_COLUMNS, TRADES, *VALIDATION_COLUMNS):
        columns[name] = list(map(attrgetter(name), candles))
    columns[CLOSE_TIME] = list(map(attrgetter("close_time_ms"), candles))
    return columns


def _missing(open_times: list[int], timeframe: Timeframe, day: date) -> list[tuple[int, int]]:
    """Gaps of the day (``domain.gaps``); a full count of unique aligned in-day times has none."""
    if len(open_times) == timeframe.per_day:
        return []
    start = day_start_ms(day)
    return missing_ranges(open_times, start, start + DAY_MS, timeframe.ms)


def candles_of(columns: Columns, symbol: str, timeframe: Timeframe) -> list[OHLCVData]:
    """Candles of a partition's column values (``candle_codec.table_columns``)."""
    return [
        OHLCVData(
            symbol=symbol, timestamp=ms_to_datetime(ts), timeframe=timeframe, open=o, high=h,
            low=lo, close=c, volume=v, quote_volume=qv, trades=n, taker_buy_volume=tbv,
            taker_buy_quote_volume=tbqv, close_time_ms=ct, is_validated=ok, validation_score=score,
            anomaly_flags=tuple(flags),
        )
        for ts, o, h, lo, c, v, qv, n, tbv, tbqv, ct, ok, score, flags in zip(
            *(columns[name] for name in CANDLE_FILE_COLUMNS), strict=True
        )
    ]


