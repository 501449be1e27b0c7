"""Backfill closed periods from the exchange's bulk archive, the rest through REST.

:func:`ingest_minutes_bulk` is :func:`~helios_pipeline.batch.ingest.ingest_minutes` with another
source for the candles of closed periods:

1. **plan**: each closed month of the range comes from its monthly file, each closed day of the
   current month from its daily file (``plan_archive``); days that are not closed are refused
   as on the REST path;
2. **download** the files (``exchanges.bulk_archive``: checksum verified, CSV parsed into the
   same exact Arrow columns REST pages give); a missing file (404, not yet published), a
   checksum mismatch, a truncated zip or a malformed row sends that file's days to REST, with a
   :class:`Fallback` naming the file;
3. **cross-check** each month's archive data against REST: for a monthly file its first and
   last candle and one seeded random minute, for the daily files of the current month used by
   one call the first candle of the first, the last of the last and one seeded random minute
   among them (three requests a month either way: checking every daily file would cost more
   weight than fetching the days). They are fetched through REST and compared value for value;
   a difference discards that month's archive data (REST for those days) and is reported as a
   :class:`Mismatch` (the Dagster run raises an alert for it);
4. **store** every day through the same validation and storage code as the REST path
   (``ingest.store_minutes``), so a stored partition is byte-identical whichever source it came
   from. The catalog's ``source`` says which: ``archive <url> sha256=<hex>`` or the REST client's.

The :class:`BulkReport` says which file served which days, what fell back and why, and the REST
weight the call spent (the archive is another host and spends none).
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import random
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.batch.ingest import MinuteDay, Stores, store_minutes
from helios_pipeline.batch.ohlcv import check_day_closed
from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.schema import EXCHANGE_SCHEMA
from helios_pipeline.domain.symbols import normalize_symbol, to_storage_id
from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, Timeframe, day_start_ms
from helios_pipeline.exchanges.bulk_archive import (
    ArchiveError,
    ArchiveFile,
    BulkArchiveClient,
    archive_url,
)
from helios_pipeline.exchanges.candle_window import CandleBatch
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.validation.rules import ValidationThresholds


@dataclass(frozen=True)
class ArchivePlan:
    """One archive file and the days of the range it serves."""

    first: date
    monthly: bool
    days: tuple[date, ...]


@dataclass(frozen=True)
class Fallback:
    """Days taken from REST because their archive file could not be used."""

    url: str
    days: tuple[date, ...]
    reason: str

    def message(self) -> str:
        """One line for the run's log: the file, why, and which days REST serves instead."""
        span = f"{self.days[0]}" if len(self.days) == 1 else f"{self.days[0]}..{self.days[-1]}"
        return (f"Bulk archive file {self.url} not used: {self.reason.rstrip('.')}. "
                f"{len(self.days)} day(s) {span} are fetched through REST instead.")


@dataclass(frozen=True)
class Mismatch:
    """An archive candle that differs from what REST answers for the same minute."""

    url: str
    minute: datetime
    archive: dict[str, object] | None
    rest: dict[str, object] | None

    def message(self) -> str:
        """What differs, value by value."""
        if self.archive is None or self.rest is None:
            which = "the archive" if self.archive is None else "REST"
            return f"{self.url}: {which} has no candle at {self.minute:%Y-%m-%d %H:%M} UTC."
        diffs = [f"{k} archive={self.archive[k]} rest={self.rest.get(k)}"
                 for k in self.archive if self.archive[k] != self.rest.get(k)]
        return f"{self.url}: candle at {self.minute:%Y-%m-%d %H:%M} UTC differs: " + "; ".join(
            diffs)


@dataclass
class BulkReport:
    """What :func:`ingest_minutes_bulk` took from where.

    Attributes:
        sources: Archive days and the ``archive <url> sha256=<hex>`` they came from.
        rest_days: Days fetched through REST (not archived, fallen back, or bulk path off).
        fallbacks: Files not used, with the reason (each is a warning for the run's log).
        mismatches: Cross-check differences (each quarantined a month; alert on them).
        rest_weight: REST request weight spent (candles, cross-checks, re-fetches).
        files: Archive files used.
    """

    sources: dict[date, str] = field(default_factory=dict)
    rest_days: list[date] = field(default_factory=list)
    fallbacks: list[Fallback] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    rest_weight: int = 0
    files: int = 0


def plan_archive(days: Sequence[date], today: date) -> tuple[list[ArchivePlan], list[date]]:
    """Which days come from which archive file, and which days only REST can serve.

    A month that ended before ``today`` comes from its monthly file; a closed day of the
    current month from its daily file; ``today`` and later from REST (the caller refuses them).
    """
    plans: list[ArchivePlan] = []
    rest: list[date] = []
    for (year, month), group in groupby(sorted(set(days)), key=lambda d: (d.year, d.month)):
        in_month = tuple(group)
        month_end = date(year, month, calendar.monthrange(year, month)[1])
        if month_end < today:
            plans.append(ArchivePlan(date(year, month, 1), True, in_month))
            continue
        plans.extend(ArchivePlan(day, False, (day,)) for day in in_month if day < today)
        rest.extend(day for day in in_month if day >= today)
    return plans, rest


async def ingest_minutes_bulk(
    client: ExchangeClient,
    archive: BulkArchiveClient,
    stores: Stores,
    symbol: str,
    days: Sequence[date],
    thresholds: ValidationThresholds | None = None,
    reference: ExchangeClient | None = None,
) -> tuple[list[MinuteDay], BulkReport]:
    """Store the 1m candles of ``days``: closed periods from archive files, the rest from REST.

    Args:
        client: Open exchange client (REST for what the archive lacks, and cross-checks).
        archive: Open archive client of the same exchange.
        stores: Where candles, catalog rows and quarantine records go.
        symbol: ccxt unified symbol.
        days: Closed UTC days, in any order.
        thresholds: Validation thresholds; defaults when omitted.
        reference: Open client of the reference venue that confirms price-rule breaks
            (``batch.confirm``); ``None``: such candles are quarantined.

    Returns:
        The stored partitions in day order, and what came from where.

    Raises:
        DayNotClosedError: A day has not closed yet (nothing is fetched).
        ExchangeError: REST failed for days it had to serve (nothing is stored).
    """
    ordered = sorted(set(days))
    for day in ordered:
        check_day_closed(day)
    report = BulkReport()
    if not ordered:
        return [], report
    spent = client.limiter.weight_spent
    plans, rest = plan_archive(ordered, datetime.now(tz=UTC).date())
    symbol_id = to_storage_id(normalize_symbol(symbol))
    used = await asyncio.gather(*(_use(client, archive, symbol, symbol_id, plan, report)
                                  for plan in plans))
    used = await _cross_check_daily(client, symbol, plans, used, report)
    tables = []
    for plan, file in zip(plans, used, strict=True):
        if file is None:
            rest.extend(plan.days)
            continue
        report.files += 1
        tables.append(_days_of(file.table, plan.days))
        report.sources.update(dict.fromkeys(plan.days, f"archive {file.url} sha256={file.sha256}"))
    report.rest_days = sorted(rest)
    batch = _merge(tables, await _fetch_rest(client, symbol, report.rest_days))
    minutes = await store_minutes(client, stores, symbol, ordered, batch, thresholds,
                                  report.sources, reference)
    report.rest_weight = client.limiter.weight_spent - spent
    return minutes, report


class _CheckedFiles:
    """The last few archive files that passed every check, shared by the chunks of a process.

    A backfill's chunks of 31 days straddle calendar months, so consecutive chunks need the same
    monthly file: it is downloaded, verified and cross-checked once. Published archive files do
    not change.
    """

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._files: OrderedDict[str, ArchiveFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str) -> ArchiveFile | None:
        with self._lock:
            found = self._files.get(url)
            if found is not None:
                self._files.move_to_end(url)
            return found

    def put(self, file: ArchiveFile) -> None:
        with self._lock:
            self._files[file.url] = file
            while len(self._files) > self._size:
                self._files.popitem(last=False)


    def clear(self) -> None:
        with self._lock:
            self._files.clear()


_CHECKED = _CheckedFiles()


def forget_checked_files() -> None:
    """Forget the archive files already checked in this process (the next use fetches again)."""
    _CHECKED.clear()


async def _use(client: ExchangeClient, archive: BulkArchiveClient, symbol: str, symbol_id: str,
               plan: ArchivePlan, report: BulkReport) -> ArchiveFile | None:
    """The verified file of ``plan``, or ``None`` (with a fallback recorded) when unusable.

    A monthly file is cross-checked here and kept for the next chunk; daily files are
    cross-checked together, month by month, by :func:`_cross_check_daily`.
    """
    url = archive_url(archive.base_url, symbol_id, plan.first, plan.monthly)
    checked = _CHECKED.get(url)
    if checked is not None:
        return checked
    file = await _verified(client, archive, symbol, symbol_id, plan, report)
    if file is not None and plan.monthly:
        _CHECKED.put(file)
    return file


async def _verified(client: ExchangeClient, archive: BulkArchiveClient, symbol: str,
                    symbol_id: str, plan: ArchivePlan, report: BulkReport) -> ArchiveFile | None:
    """Download, verify and (monthly files) cross-check ``plan``'s file."""
    try:
        file = await archive.fetch(symbol_id, plan.first, plan.monthly)
    except ArchiveError as exc:
        url = archive_url(archive.base_url, symbol_id, plan.first, plan.monthly)
        report.fallbacks.append(Fallback(url, plan.days, str(exc).split(": ", 1)[-1]))
        return None
    if plan.monthly:
        mismatches = await cross_check(client, symbol, [file])
        if mismatches:
            report.mismatches.extend(mismatches)
            report.fallbacks.append(Fallback(file.url, plan.days, "differs from REST: "
                                             + mismatches[0].message()))
            return None
    return file


async def _cross_check_daily(client: ExchangeClient, symbol: str, plans: Sequence[ArchivePlan],
                             used: Sequence[ArchiveFile | None], report: BulkReport
                             ) -> list[ArchiveFile | None]:
    """``used`` without the daily files of a month whose cross-check found a difference.

    The daily files of each month are checked together (:func:`check_minutes`); a difference
    sends every one of them to REST, each with a fallback naming it.
    """
    out = list(used)
    daily = [i for i, (plan, file) in enumerate(zip(plans, used, strict=True))
             if file is not None and not plan.monthly]
    for _, group in groupby(daily, key=lambda i: (plans[i].first.year, plans[i].first.month)):
        members = list(group)
        files = [file for i in members if (file := used[i]) is not None]
        mismatches = await cross_check(client, symbol, files)
        if not mismatches:
            continue
        report.mismatches.extend(mismatches)
        for i, file in zip(members, files, strict=True):
            report.fallbacks.append(Fallback(file.url, plans[i].days, "the month's daily files "
                                             "differ from REST: " + mismatches[0].message()))
            out[i] = None
    return out


def check_minutes(files: Sequence[ArchiveFile]) -> list[tuple[int, ArchiveFile]]:
    """Open times (ms) the cross-check compares, each with the file holding it.

    The first candle of the first file, the last of the last and one seeded random candle among
    all of them (``files`` in time order; one monthly file, or a month's daily files).
    """
    times = [(t, file) for file in files
             for t in file.table.column(TIMESTAMP).cast(pa.int64()).to_pylist()]
    if not times:
        return []
    names = "".join(file.name for file in files)
    seed = int(hashlib.sha256(names.encode()).hexdigest()[:16], 16)
    picked = times[random.Random(seed).randrange(len(times))]  # noqa: S311 (not crypto)
    return sorted(dict([times[0], times[-1], picked]).items(), key=lambda item: item[0])


async def cross_check(client: ExchangeClient, symbol: str,
                      files: Sequence[ArchiveFile]) -> list[Mismatch]:
    """Compare :func:`check_minutes` of archive files with REST's candles, value for value."""
    minutes = check_minutes(files)
    batches = await asyncio.gather(*(client.fetch_candles(symbol, Timeframe.M1, t, t + MINUTE_MS)
                                     for t, _ in minutes))
    out = []
    for (t, file), batch in zip(minutes, batches, strict=True):
        archived = _row_at(file.table, t)
        rest = _row_at(batch.table, t)
        if rest is None and batch.candles:  # a page that needed the exact parser
            continue
        if archived != rest:
            out.append(Mismatch(file.url, datetime.fromtimestamp(t / 1000, tz=UTC), archived,
                                rest))
    return out


def _row_at(table: pa.Table, open_ms: int) -> dict[str, object] | None:
    rows = table.filter(pc.equal(table.column(TIMESTAMP).cast(pa.int64()), open_ms)).to_pylist()
    return rows[0] if rows else None


def _days_of(table: pa.Table, days: Sequence[date]) -> pa.Table:
    """The rows of ``table`` opening on one of ``days``."""
    opens = table.column(TIMESTAMP).cast(pa.int64())
    day_index = pc.divide(opens, DAY_MS)
    wanted = pa.array([day_start_ms(d) // DAY_MS for d in days], pa.int64())
    return table.filter(pc.is_in(day_index, value_set=wanted))


async def _fetch_rest(client: ExchangeClient, symbol: str, days: Sequence[date]
                      ) -> list[CandleBatch]:
    """REST candles of ``days``, one ranged fetch per run of consecutive days."""
    runs: list[list[date]] = []
    for day in days:
        if runs and runs[-1][-1] + timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return list(await asyncio.gather(*(
        client.fetch_candles(symbol, Timeframe.M1, day_start_ms(run[0]),
                             day_start_ms(run[-1]) + DAY_MS) for run in runs)))


def _merge(tables: Sequence[pa.Table], batches: Sequence[CandleBatch]) -> CandleBatch:
    """One batch of archive tables and REST batches (their days never overlap), sorted."""
    parts = [*tables, *(b.table for b in batches)]
    table = pa.concat_tables(parts) if parts else EXCHANGE_SCHEMA.empty_table()
    table = table.take(pc.sort_indices(table, [(TIMESTAMP, "ascending")]))
    return CandleBatch(table, sorted((c for b in batches for c in b.candles),
                                     key=lambda c: c.timestamp))
