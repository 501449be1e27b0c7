"""Stored versions: candles as they were stored at a past moment, and what changed between two.

The catalog (``storage.metadata``) records every version of every partition with its content hash
and when it was written; ``storage.versions`` keeps earlier contents. ``ohlcv(..., as_of=t)``
reads, day by day, the version that was the newest at ``t`` (:func:`load_as_of`); ``helios
history`` lists a partition's versions and shows what changed (:func:`diff_tables`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa

from helios_pipeline.domain.columns import COMPARED_FIELDS, TIMESTAMP
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, day_start_ms, ms_to_datetime
from helios_pipeline.query.sources import Span, clip, stitch, tiered
from helios_pipeline.storage.archive import ArchivedMonth, CandleArchive, month_of
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.versions import VersionNotKeptError


def load_as_of(store: CandleStore, catalog: MetadataStore, exchange: str, symbol: str,
               timeframe: Timeframe, span: Span, at: datetime,
               archive: CandleArchive | None = None) -> pa.Table:
    """The span's candles as stored at ``at`` (stored tiers only: live data has no versions).

    A version whose daily file was removed after archiving is read from the archive's month
    file, which records the content hash of every daily file it was built from.

    Raises:
        VersionNotKeptError: A version the catalog names is no longer kept.
    """
    days = span.days()
    if not days:
        return stitch([])
    records = catalog.partitions_as_of(exchange, symbol, timeframe, days[0], days[-1], at)
    months = _ArchivedDays(archive, exchange, symbol, timeframe)
    tables = []
    for record in records:
        try:
            tables.append(store.load_version(record.path, record.content_hash))
        except VersionNotKeptError:
            archived = months.day(record.day, record.content_hash)
            if archived is None:
                raise
            tables.append(archived)
    if not tables:
        return stitch([])
    return tiered(clip(pa.concat_tables(tables), span), "warm")


@dataclass
class _ArchivedDays:
    """Days of archive month files, each month read once."""

    archive: CandleArchive | None
    exchange: str
    symbol: str
    timeframe: Timeframe
    months: dict[date, tuple[pa.Table, ArchivedMonth] | None] = field(default_factory=dict)

    def day(self, day: date, content_hash: str) -> pa.Table | None:
        """The day's rows if the archive holds the daily file with ``content_hash``."""
        if self.archive is None:
            return None
        month = month_of(day)
        if month not in self.months:
            self.months[month] = self.archive.read_month_info(self.exchange, self.symbol,
                                                              self.timeframe, month)
        found = self.months[month]
        if found is None or found[1].source_hashes.get(day) != content_hash:
            return None
        table = found[0]
        start = day_start_ms(day)
        return clip(table, Span(start, start + DAY_MS))


@dataclass
class TableDiff:
    """What differs between two versions of a partition.

    Attributes:
        added: Open times only the newer version has.
        removed: Open times only the older version has.
        changed: ``(open time, column, old, new)`` for values that differ.
    """

    added: list[datetime] = field(default_factory=list)
    removed: list[datetime] = field(default_factory=list)
    changed: list[tuple[datetime, str, object, object]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """Whether the two versions hold the same candles."""
        return not (self.added or self.removed or self.changed)


def diff_tables(old: pa.Table, new: pa.Table,
                columns: tuple[str, ...] = (*COMPARED_FIELDS, "anomaly_flags")) -> TableDiff:
    """Candle by candle, what ``new`` adds, removes and changes relative to ``old``."""
    before = _rows(old, columns)
    after = _rows(new, columns)
    diff = TableDiff(
        added=[ms_to_datetime(t) for t in sorted(after.keys() - before.keys())],
        removed=[ms_to_datetime(t) for t in sorted(before.keys() - after.keys())],
    )
    for ts in sorted(before.keys() & after.keys()):
        for name, a, b in zip(columns, before[ts], after[ts], strict=True):
            if a != b:
                diff.changed.append((ms_to_datetime(ts), name, a, b))
    return diff


def _rows(table: pa.Table, columns: tuple[str, ...]) -> dict[int, tuple[object, ...]]:
    times = table.column(TIMESTAMP).cast(pa.int64()).to_pylist()
    values = [table.column(name).to_pylist() for name in columns]
    return {ts: tuple(v[i] for v in values) for i, ts in enumerate(times)}
