"""Quarantine: rows that failed validation, kept with the rules they broke, as JSON Lines files.

Nothing that fails a hard rule reaches the candle partitions; it lands here instead, with the
offending values and the raw row as received, so that it can be inspected, reported and, if a rule
was wrong, replayed. Layout (``storage.paths``)::

    quarantine/{STORAGE_ID}/{YYYY}/{MM}/ohlcv_{tf}_{YYYYMMDD}.jsonl   one batch partition
    quarantine/{STORAGE_ID}/{YYYY}/{MM}/live_{YYYYMMDD}.jsonl         the realtime path, appended

A batch partition's file is replaced as a whole, atomically (``storage.atomic``), each time the
partition is materialised: re-running a day yields the same records, never duplicates, and when
only the detection times differ the file is left untouched (identical bytes). The live file is
appended and fsynced record by record batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.timeframe import Timeframe, days_between
from helios_pipeline.storage.atomic import fsync_dir, write_atomic
from helios_pipeline.storage.paths import (
    quarantine_live_path,
    quarantine_month_dir,
    quarantine_ohlcv_path,
)


class QuarantineFileError(ValueError):
    """A quarantine file holds a line that is not a quarantine record."""


class QuarantineStore:
    """Quarantine files under ``{data_dir}/quarantine``.

    Args:
        data_dir: Data root (``Settings.data_dir``).
    """

    def __init__(self, data_dir: Path | str) -> None:
        self._data_dir = Path(data_dir)

    def path(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> Path:
        """File of one batch partition's records."""
        return quarantine_ohlcv_path(self._data_dir, symbol, timeframe, day, exchange)

    def store_partition(
        self,
        symbol: str,
        timeframe: Timeframe,
        day: date,
        records: Sequence[QuarantineRecord],
        exchange: str | None = None,
    ) -> Path | None:
        """Replace the records of one batch partition (atomic; no records removes the file).

        Args:
            symbol: ccxt unified symbol.
            timeframe: Candle length of the partition.
            day: UTC day of the partition.
            records: Every record of the partition, in the order the rows were received.
            exchange: Exchange-qualifies the folder when given.

        Returns:
            The file, or None when there are no records (and no file any more).
        """
        path = self.path(symbol, timeframe, day, exchange)
        if not records:
            path.unlink(missing_ok=True)
            return None
        if path.is_file() and _same(_read(path), records):
            return path  # identical apart from detection times: keep the bytes
        write_atomic(path, _lines(records))
        return path

    def append(
        self, records: Iterable[QuarantineRecord], exchange: str | None = None
    ) -> list[Path]:
        """Append realtime records to their day's ``live_`` file, fsynced before returning.

        Returns:
            The files appended to.
        """
        by_path: dict[Path, list[QuarantineRecord]] = {}
        for record in records:
            path = quarantine_live_path(self._data_dir, record.symbol, record.day(), exchange)
            by_path.setdefault(path, []).append(record)
        for path, group in by_path.items():
            created = not path.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as stream:
                stream.write(_lines(group))
                stream.flush()
                os.fsync(stream.fileno())
            if created:
                fsync_dir(path.parent)
        return list(by_path)

    def load_partition(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> list[QuarantineRecord]:
        """Records of one batch partition (empty when it has none).

        Raises:
            QuarantineFileError: The file holds a line that is not a record.
        """
        path = self.path(symbol, timeframe, day, exchange)
        return _read(path) if path.is_file() else []

    def load(
        self, symbol: str, start: date, end: date, exchange: str | None = None
    ) -> list[QuarantineRecord]:
        """Every record of the days ``start`` to ``end`` (both included).

        Batch partitions of any timeframe and the live files; per day, files in name order.

        Raises:
            QuarantineFileError: A file holds a line that is not a record.
        """
        records: list[QuarantineRecord] = []
        for day in days_between(start, end):
            folder = quarantine_month_dir(self._data_dir, symbol, day, exchange)
            if folder.is_dir():
                for path in sorted(folder.glob(f"*_{day:%Y%m%d}.jsonl")):
                    records.extend(_read(path))
        return records

    def count(self, symbol: str, start: date, end: date, exchange: str | None = None) -> int:
        """Number of records :meth:`load` returns for the same arguments."""
        return len(self.load(symbol, start, end, exchange))


def _lines(records: Iterable[QuarantineRecord]) -> bytes:
    return "".join(f"{r.to_json()}\n" for r in records).encode("ascii")


def _read(path: Path) -> list[QuarantineRecord]:
    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            records.append(QuarantineRecord.from_json(line.decode("ascii")))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise QuarantineFileError(
                f"{path}:{number}: not a quarantine record ({exc}); fix or move the file."
            ) from None
    return records


def _same(old: Sequence[QuarantineRecord], new: Sequence[QuarantineRecord]) -> bool:
    """Equal records apart from ``detected_at`` (compared as stored, i.e. after JSON)."""
    if len(old) != len(new):
        return False
    return all(
        replace(a, detected_at="") == replace(QuarantineRecord.from_json(b.to_json()),
                                               detected_at="")
        for a, b in zip(old, new, strict=True)
    )
