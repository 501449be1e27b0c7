"""Candles from each tier as Arrow tables, and stitching them into one series.

Tiers, most authoritative first (where two hold the same minute, the first one wins):

* ``warm``: the daily partition files (from the exchange's REST candles, validated: the batch
  path's truth);
* ``archive``: the cold tier's monthly files (built from, and verified against, daily files);
* ``hot``: the live 1m candles Redis holds (the last ``HELIOS_HOT_RETENTION_MINUTES``), built by
  the stream service from trades, each the newest version of its minute;
* ``current``: ``market_data/{SYMBOL}/current/realtime_ohlcv_1m.parquet``, the live candles of
  the last 24 hours as of the latest hourly flush from Redis (``storage.current_candles``).

Every table has :data:`~helios_pipeline.domain.schema.OHLCV_SCHEMA` plus a ``tier`` column
(int8, the tier's index in :data:`TIERS`), so a stitched series says where each row came from.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, days_between
from helios_pipeline.storage.archive import CandleArchive, month_of, next_month
from helios_pipeline.storage.candle_codec import read_table, to_frame
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.current_candles import live_table

TIERS = ("warm", "archive", "hot", "current")
TIER = "tier"
TIERED_SCHEMA = OHLCV_SCHEMA.append(pa.field(TIER, pa.int8(), nullable=False))


@dataclass(frozen=True, slots=True)
class Span:
    """Open times ``start_ms <= t < end_ms`` (ms epoch UTC)."""

    start_ms: int
    end_ms: int

    def days(self) -> list[date]:
        """The UTC days the span touches."""
        if self.end_ms <= self.start_ms:
            return []
        first = date.fromordinal(date(1970, 1, 1).toordinal() + self.start_ms // DAY_MS)
        last = date.fromordinal(date(1970, 1, 1).toordinal() + (self.end_ms - 1) // DAY_MS)
        return days_between(first, last)


def tiered(table: pa.Table, tier: str) -> pa.Table:
    """``table`` with its ``tier`` column."""
    return table.append_column(TIER, pa.array(np.full(table.num_rows, TIERS.index(tier),
                                                      dtype=np.int8)))


def clip(table: pa.Table, span: Span) -> pa.Table:
    """Rows of ``table`` whose open time is inside ``span`` (tables are sorted by open time)."""
    if not table.num_rows or (span.start_ms <= first_ms(table) and last_ms(table) < span.end_ms):
        return table  # all inside (whole days and months mostly are): no pass over the times
    times = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    lo, hi = np.searchsorted(times, [span.start_ms, span.end_ms])
    return table.slice(int(lo), int(hi - lo))


def load_warm(store: CandleStore, symbol: str, timeframe: Timeframe, span: Span,
              qualifier: str | None, days: Sequence[date] | None = None
              ) -> tuple[pa.Table, set[date]]:
    """The daily files of the span's days (or of ``days``); also which days have a file."""
    paths = store.find_many(symbol, timeframe, span.days() if days is None else days, qualifier)
    tables = [read_table(paths[day]) for day in sorted(paths)]
    return _tiered_concat(tables, "warm", span), set(paths)


def load_archive(archive: CandleArchive, exchange: str, symbol: str, timeframe: Timeframe,
                 span: Span, have: set[date], now_ms: int) -> tuple[pa.Table, set[date]]:
    """Archived candles of the span's days without a daily file; also which days it holds.

    Only closed months are looked up (the archive holds nothing newer), one file per month.
    """
    today = date.fromordinal(date(1970, 1, 1).toordinal() + now_ms // DAY_MS)
    months = sorted({month_of(d) for d in span.days() if d not in have})
    tables, found = [], set[date]()
    for month in months:
        if next_month(month) > today:
            break
        month_file = archive.read_month_info(exchange, symbol, timeframe, month)
        if month_file is not None:
            tables.append(month_file[0])
            found.update(d for d in month_file[1].days if d not in have)
    if not tables:
        return TIERED_SCHEMA.empty_table(), found
    return _tiered_concat(tables, "archive", span), found


def load_current(path: Path, span: Span) -> pa.Table:
    """The rolling intraday file's candles inside ``span`` (empty when there is no file)."""
    if not path.is_file():
        return TIERED_SCHEMA.empty_table()
    return _tiered_concat([read_table(path)], "current", span)


def hot_table(candles: Sequence[LiveCandle], span: Span) -> pa.Table:
    """Redis's live candles inside ``span``."""
    return _tiered_concat([live_table(candles)], "hot", span)


def tiered_frame(table: pa.Table, as_float: bool) -> pd.DataFrame:
    """A tiered table as a DataFrame indexed by open time; ``tier`` as a categorical name."""
    codes = table.column(TIER).to_numpy()
    tiers = pd.Categorical.from_codes(codes, categories=pd.Index(TIERS))
    return to_frame(table.drop_columns([TIER]), as_float, extra={TIER: tiers})


def stitch(tables: Sequence[pa.Table]) -> pa.Table:
    """One series from tiered tables: sorted by open time, one row per open time.

    Where tiers overlap, the row of the most authoritative tier (lowest ``tier``) is kept.
    """
    tables = sorted((t for t in tables if t.num_rows), key=first_ms)
    if not tables:
        return TIERED_SCHEMA.empty_table()
    if len(tables) == 1:
        return tables[0]
    table = pa.concat_tables(tables)
    if all(last_ms(a) < first_ms(b) for a, b in itertools.pairwise(tables)):
        return table  # tiers that do not overlap (archive, then warm days): already in order
    order = pc.sort_indices(table, [(TIMESTAMP, "ascending"), (TIER, "ascending")])
    table = table.take(order)
    times = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    first = np.ones(times.size, dtype=bool)
    first[1:] = times[1:] != times[:-1]
    return table.filter(pa.array(first)) if not first.all() else table


def first_ms(table: pa.Table) -> int:
    """The first row's open time (ms epoch) of a non-empty table."""
    value: int = table.column(TIMESTAMP)[0].cast(pa.int64()).as_py()
    return value


def last_ms(table: pa.Table) -> int:
    """The last row's open time (ms epoch) of a non-empty table."""
    value: int = table.column(TIMESTAMP)[-1].cast(pa.int64()).as_py()
    return value


def _tiered_concat(tables: list[pa.Table], tier: str, span: Span) -> pa.Table:
    if not tables:
        return TIERED_SCHEMA.empty_table()
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return tiered(clip(table, span), tier)
