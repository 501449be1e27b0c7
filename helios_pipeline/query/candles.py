"""Reading one symbol's candles for a span from every tier, for any timeframe.

Stored timeframes (1m..1d) come from the warm daily files and, for days without one, the cold
archive's monthly files; the part of the span neither covers yet (today) comes from the live 1m
candles (Redis, then the rolling intraday file), aggregated when a longer timeframe is asked
for. Other lengths (``30m``, ``2h``, ``1w``) are aggregated from the stitched 1m series. Only
closed candles are returned: a bucket that ends after ``now`` is still forming.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from helios_pipeline.domain.aggregate import aggregate_table
from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import DAY_MS, Bucket, Timeframe
from helios_pipeline.query.sources import (
    TIER,
    TIERED_SCHEMA,
    Span,
    clip,
    hot_table,
    last_ms,
    load_archive,
    load_current,
    load_warm,
    stitch,
)
from helios_pipeline.storage.archive import CandleArchive
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.current_candles import current_candles_path

CURRENT_WINDOW_MS = 25 * 3_600_000  # the intraday file holds 24 hours, flushed hourly


@dataclass
class CandleReader:
    """Reads candles of one venue's storage.

    Args:
        store: The warm daily files.
        live: Redis's live 1m candles of a symbol (``None`` when no hot tier is configured).
        hot_window_ms: How far back Redis holds live candles.
        now_ms: The clock deciding which candles are closed.
        archive: The cold tier's monthly files (``None``: no archive is read).
        exchange: The primary venue: the archive names every venue, the daily folders only
            the others (``qualifier``).
    """

    store: CandleStore
    live: Callable[[str], list[LiveCandle]] | None
    hot_window_ms: int
    now_ms: Callable[[], int]
    archive: CandleArchive | None = None
    exchange: str = "binance"

    def read(self, symbol: str, timeframe: Timeframe | Bucket, span: Span,
             qualifier: str | None) -> pa.Table:
        """Closed candles with open times in ``span``, one per open time, with their tier."""
        now = self.now_ms()
        if isinstance(timeframe, Bucket):
            wide = Span(timeframe.floor(span.start_ms), span.end_ms)
            table = aggregate_tiered(self._stored(symbol, Timeframe.M1, wide, qualifier, now),
                                     timeframe)
        else:
            table = self._stored(symbol, timeframe, span, qualifier, now)
        return _closed(clip(table, span), timeframe.ms, now)

    def _stored(self, symbol: str, timeframe: Timeframe, span: Span, qualifier: str | None,
                now: int) -> pa.Table:
        warm, days = load_warm(self.store, symbol, timeframe, span, qualifier)
        parts = [warm]
        if self.archive is not None:  # days without a daily file, inside an archived month
            cold, archived = load_archive(self.archive, qualifier or self.exchange, symbol,
                                          timeframe, span, days, now)
            parts.append(cold)
            days |= archived
        if timeframe is not Timeframe.M1:  # days stored as 1m only (not derived yet)
            rest = [d for d in span.days() if d not in days]
            minutes, more = load_warm(self.store, symbol, Timeframe.M1, span, qualifier, rest)
            parts.append(aggregate_tiered(minutes, Bucket.of(timeframe)))
            days |= more
        live = self._live_minutes(symbol, span, qualifier, days, now)
        if timeframe is not Timeframe.M1 and live.num_rows:
            live = aggregate_tiered(live, Bucket.of(timeframe))
        return stitch([*parts, live])

    def _live_minutes(self, symbol: str, span: Span, qualifier: str | None, stored: set[date],
                      now: int) -> pa.Table:
        """Live 1m candles of the span's days that have no daily file."""
        if span.end_ms <= now - CURRENT_WINDOW_MS:
            return TIERED_SCHEMA.empty_table()
        wide = Span(span.start_ms - span.start_ms % DAY_MS, span.end_ms)
        path = current_candles_path(self.store.data_dir, symbol, qualifier)
        parts = [load_current(path, wide)]
        if self.live is not None and span.end_ms > now - self.hot_window_ms:
            parts.append(hot_table(self.live(symbol), wide))
        minutes = stitch(parts)
        if not stored or not minutes.num_rows:
            return minutes
        days = minutes.column(TIMESTAMP).cast(pa.int64()).to_numpy() // DAY_MS
        stored_days = np.array([_epoch_day(d) for d in stored])
        return minutes.filter(pa.array(~np.isin(days, stored_days)))


def aggregate_tiered(minutes: pa.Table, bucket: Bucket) -> pa.Table:
    """:func:`aggregate_table` of a tiered 1m table.

    A bucket's tier is its least authoritative minute's: a bucket with one live minute is live.
    """
    if not minutes.num_rows:
        return TIERED_SCHEMA.empty_table()
    candles = aggregate_table(minutes.drop_columns([TIER]), bucket)
    times = minutes.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    starts = times - (times - bucket.offset_ms) % bucket.ms
    tiers = minutes.column(TIER).to_numpy()
    first = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    return candles.append_column(TIER, pa.array(np.maximum.reduceat(tiers, first)))


def _closed(table: pa.Table, length_ms: int, now_ms: int) -> pa.Table:
    """Drop a trailing candle that is still forming (it ends after ``now``)."""
    if not table.num_rows or last_ms(table) + length_ms <= now_ms:
        return table
    times = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    keep = int(np.searchsorted(times, now_ms - length_ms, side="right"))
    return table.slice(0, keep)


def _epoch_day(day: date) -> int:
    return day.toordinal() - date(1970, 1, 1).toordinal()
