"""Tier movement: compact a closed month of daily files into the cold archive, then trim them.

:func:`compact_month` does one symbol-month, for 1m and every derived timeframe:

1. read the month's daily files (noting each file's SHA-256, the catalog's content hash);
2. keep what an earlier run archived for days whose daily files are gone already;
3. write the month file (``storage.archive``), unless it already holds exactly these rows;
4. read it back and verify its row count and :func:`~helios_pipeline.storage.archive.table_hash`
   equal those of the daily files (an :class:`ArchiveVerificationError` stops here, removing
   nothing);
5. remove the daily files of days older than the warm window (``HELIOS_WARM_DAYS``), each only if
   its bytes are still the ones archived (a re-fetch in the meantime keeps the file);
6. record the month in the catalog (``MetadataStore.record_archive``).

Running it again is safe: an unchanged month is not rewritten, and a re-fetched day replaces its
rows in the month file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES
from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, day_start_ms, days_between
from helios_pipeline.storage.archive import (
    ArchivedMonth,
    CandleArchive,
    month_of,
    next_month,
    table_hash,
)
from helios_pipeline.storage.candle_codec import read_table, read_table_bytes
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import ArchiveRecord
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import ohlcv_paths

ARCHIVED_TIMEFRAMES = (Timeframe.M1, *DERIVED_TIMEFRAMES)


class ArchiveVerificationError(RuntimeError):
    """The month file read back does not hold the daily files' rows; nothing was removed."""


class MonthNotClosedError(ValueError):
    """The month is not over yet: its last day has no complete daily files."""


@dataclass(frozen=True)
class MonthCompaction:
    """What compacting one symbol-month of one timeframe did.

    Attributes:
        archived: The verified month file.
        written: False when the month file already held exactly these rows.
        removed: Daily files removed (older than the warm window, verified archived).
        kept: Days inside the warm window whose daily files stay.
    """

    timeframe: Timeframe
    archived: ArchivedMonth
    written: bool
    removed: list[Path] = field(default_factory=list)
    kept: list[date] = field(default_factory=list)


@dataclass(frozen=True)
class Tiers:
    """The stores tier movement reads and writes, and the venue they belong to.

    Attributes:
        store: Warm daily files.
        archive: Cold monthly files.
        catalog: Where archive months are recorded.
        exchange: ccxt exchange id (names the archive folder and catalog rows).
        qualifier: Exchange-qualified daily folders (``okx.BTCUSDT``); ``None`` for the
            primary venue.
    """

    store: CandleStore
    archive: CandleArchive
    catalog: MetadataStore
    exchange: str
    qualifier: str | None = None


def compact_month(tiers: Tiers, symbol: str, month: date, today: date, warm_days: int,
                  timeframes: Sequence[Timeframe] = ARCHIVED_TIMEFRAMES,
                  clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                  ) -> list[MonthCompaction]:
    """Archive one closed month of ``symbol`` and trim its daily files past the warm window.

    Args:
        tiers: The stores.
        symbol: ccxt unified symbol.
        month: Any day of the month.
        today: The current UTC day; the month must have ended before it.
        warm_days: Daily files of days at least this many days before ``today`` are removed.
        timeframes: Which timeframes to compact (timeframes without daily files are skipped).
        clock: When the compaction happened (for the catalog).

    Raises:
        MonthNotClosedError: The month has not ended before ``today``.
        ArchiveVerificationError: The month file does not read back as the daily files.
    """
    month = month_of(month)
    if next_month(month) > today:
        raise MonthNotClosedError(
            f"{symbol} {month:%Y-%m} is not closed on {today}: a month is archived once its "
            "last day is over. Pick an earlier month.")
    cutoff = today - timedelta(days=warm_days)
    done = []
    for timeframe in timeframes:
        result = _compact(tiers, symbol, timeframe, month, cutoff)
        if result is not None:
            tiers.catalog.record_archive(ArchiveRecord(
                tiers.exchange, symbol, timeframe, month, result.archived.rows,
                result.archived.days, result.archived.content_hash, result.archived.path,
                clock(), tuple(sorted(_day_of(p) for p in result.removed))))
            done.append(result)
    return done


def _compact(tiers: Tiers, symbol: str, timeframe: Timeframe, month: date, cutoff: date
             ) -> MonthCompaction | None:
    daily = _read_daily(tiers, symbol, timeframe, month)
    sources = {day: digest for day, (digest, _) in daily.items()}
    tables = [table for _, table in daily.values()]
    existing = tiers.archive.info(tiers.exchange, symbol, timeframe, month)
    if existing is not None:  # days whose daily files an earlier run removed
        gone = [d for d in existing.days if d not in daily]
        if gone:
            earlier = tiers.archive.read_month(tiers.exchange, symbol, timeframe, month)
            if earlier is None:
                raise ArchiveVerificationError(
                    f"{existing.path} disappeared while compacting {symbol} {month:%Y-%m}; "
                    "nothing was removed. Check what else writes to the archive, then retry.")
            tables.append(_rows_of_days(earlier, gone))
            sources.update({d: existing.source_hashes[d] for d in gone})
    if not sources:
        return None
    expected = pa.concat_tables(tables).sort_by(TIMESTAMP)
    digest = table_hash(expected)
    written = existing is None or existing.content_hash != digest or set(existing.days) != set(
        sources)
    if written:
        tiers.archive.write_month(tiers.exchange, symbol, timeframe, month, expected, sources)
    archived = _verify(tiers, symbol, timeframe, month, expected.num_rows, digest)
    removed, kept = [], []
    for day, (source_hash, _) in sorted(daily.items()):
        if day >= cutoff:
            kept.append(day)
        else:
            removed += _remove_daily(tiers, symbol, timeframe, day, source_hash)
    return MonthCompaction(timeframe, archived, written, removed, kept)


def _read_daily(tiers: Tiers, symbol: str, timeframe: Timeframe, month: date
                ) -> dict[date, tuple[str, pa.Table]]:
    """Per day with a daily file: its SHA-256 and its rows."""
    found = {}
    last = next_month(month) - timedelta(days=1)
    for day in days_between(month, last):
        path = tiers.store.find(symbol, timeframe, day, tiers.qualifier)
        if path is not None:
            data = path.read_bytes()
            found[day] = (hashlib.sha256(data).hexdigest(),
                          read_table_bytes(data, path.suffix, str(path)))
    return found


def _verify(tiers: Tiers, symbol: str, timeframe: Timeframe, month: date, rows: int,
            digest: str) -> ArchivedMonth:
    """The month file, read back whole, holds ``rows`` rows hashing to ``digest``."""
    where = f"{symbol} {timeframe.value} {month:%Y-%m}"
    back = tiers.archive.read_month(tiers.exchange, symbol, timeframe, month)
    info = tiers.archive.info(tiers.exchange, symbol, timeframe, month)
    if back is None or info is None:
        raise ArchiveVerificationError(f"{where}: the month file is missing after writing it.")
    if back.num_rows != rows or table_hash(back) != digest or info.content_hash != digest:
        raise ArchiveVerificationError(
            f"{where}: the archive at {info.path} reads back {back.num_rows} rows (content "
            f"{table_hash(back)[:12]}), the daily files hold {rows} (content {digest[:12]}). No "
            "daily file was removed; compact the month again.")
    return info


def _remove_daily(tiers: Tiers, symbol: str, timeframe: Timeframe, day: date,
                  source_hash: str) -> list[Path]:
    """Remove a verified day's daily files (a CSV mirror too, if it holds the same rows)."""
    path = tiers.store.find(symbol, timeframe, day, tiers.qualifier)
    if path is None or hashlib.sha256(path.read_bytes()).hexdigest() != source_hash:
        return []  # re-fetched since it was read: the next run archives the new content
    rows = table_hash(read_table(path))
    removed = [path]
    for other in ohlcv_paths(tiers.store.data_dir, symbol, timeframe, day, "parquet",
                             tiers.qualifier):
        if other != path and other.is_file() and table_hash(read_table(other)) == rows:
            removed.append(other)
    for file in removed:
        file.unlink()
    return removed


def _rows_of_days(table: pa.Table, days: Sequence[date]) -> pa.Table:
    times = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    wanted = np.array([day_start_ms(d) // DAY_MS for d in days])
    return table.filter(pa.array(np.isin(times // DAY_MS, wanted)))


def _day_of(path: Path) -> date:
    """The day of a daily file (``ohlcv_1m_20240131.parquet``)."""
    return datetime.strptime(path.stem.rsplit("_", 1)[1], "%Y%m%d").replace(tzinfo=UTC).date()


def closed_months(first: date, today: date) -> list[date]:
    """Months from ``first``'s to the last one that ended before ``today``."""
    months, month = [], month_of(first)
    while next_month(month) <= today:
        months.append(month)
        month = next_month(month)
    return months


def months_to_move(today: date, warm_days: int, first: date) -> list[date]:
    """Closed months a daily tier-movement run should (re)compact on ``today``.

    A month is compacted the day after it ends and again every day until its last day has left
    the warm window, so each of its daily files is removed the day it turns ``warm_days`` old.

    Args:
        today: The current UTC day.
        warm_days: ``HELIOS_WARM_DAYS``.
        first: No month before this day's (``HELIOS_START_DATE``).
    """
    trimmed_by = today - timedelta(days=warm_days + 1)
    return [m for m in closed_months(first, today) if next_month(m) > trimmed_by]
