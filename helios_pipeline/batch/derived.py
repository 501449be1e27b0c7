"""Derived timeframes: 5m..1d partitions built from stored 1m candles, checked against the exchange.

Plain Python; the Dagster candle assets and their consistency checks call these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import pyarrow as pa

from helios_pipeline.batch.lost_minutes import flag_candles, flagged_times, quarantined_minutes
from helios_pipeline.domain.columns import COMPARED_FIELDS, TIMESTAMP
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.resample import PARTIAL_BUCKET, aggregate_candles
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, datetime_to_ms, day_start_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionRecord
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore

DERIVED_TIMEFRAMES = (Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.H4, Timeframe.D1)


@dataclass(frozen=True)
class DerivedReport:
    """What deriving one symbol x day x timeframe did.

    Attributes:
        record: Catalog row of the derived partition (its source names the 1m version used).
        changed: False when the file already held these bytes.
        partial_buckets: Derived candles built from fewer 1m candles than the bucket holds.
    """

    symbol: str
    day: date
    timeframe: Timeframe
    record: PartitionRecord
    changed: bool
    partial_buckets: int


@dataclass(frozen=True)
class Mismatch:
    """One derived candle that differs from the exchange's candle of the same open time."""

    open_ms: int
    field: str
    ours: str
    exchange: str


@dataclass(frozen=True)
class ConsistencyReport:
    """Derived candles of a day compared with the exchange's own candles of that timeframe."""

    compared: int
    mismatches: tuple[Mismatch, ...]
    only_ours: tuple[int, ...]
    only_exchange: tuple[int, ...]
    # Open times of our candles that lost a minute to quarantine (``quarantined_minute``).
    lost_minutes: tuple[int, ...] = ()

    @property
    def consistent(self) -> bool:
        """True when every candle exists on both sides with identical values."""
        return not (self.mismatches or self.only_ours or self.only_exchange)


def derive_day(
    store: CandleStore,
    metadata: MetadataStore,
    exchange_id: str,
    symbol: str,
    day: date,
    timeframe: Timeframe,
) -> DerivedReport:
    """Aggregate the stored 1m partition of ``symbol`` on ``day`` into ``timeframe`` and store it.

    Raises:
        PartitionNotFoundError: The 1m partition has not been stored yet.
    """
    minute = metadata.latest_partition(exchange_id, symbol, Timeframe.M1, day)
    candles = aggregate_candles(store.load(symbol, Timeframe.M1, day), timeframe)
    candles = flag_candles(candles, timeframe,
                           quarantined_minutes(QuarantineStore(store.data_dir), symbol, day))
    stored = store.store(symbol, timeframe, day, candles)
    version = minute.version if minute is not None else "?"
    record = metadata.record_partition(
        exchange_id, symbol, timeframe, day, stored, source=f"derived from ohlcv_1m v{version}"
    )
    partial = sum(PARTIAL_BUCKET in c.anomaly_flags for c in candles)
    return DerivedReport(symbol, day, timeframe, record, stored.changed, partial)


async def compare_with_exchange(
    client: ExchangeClient, store: CandleStore, symbol: str, timeframe: Timeframe, day: date
) -> ConsistencyReport:
    """Fetch the exchange's own ``timeframe`` candles for ``day`` and compare them exactly."""
    start = day_start_ms(day)
    theirs = _candle_values(await client.fetch_ohlcv(symbol, timeframe, start, start + DAY_MS))
    return _compare(_candle_values(store.load(symbol, timeframe, day)), theirs)


async def compare_range_with_exchange(
    client: ExchangeClient,
    symbol: str,
    derived: Mapping[date, Mapping[Timeframe, pa.Table]],
    timeframes: Sequence[Timeframe] = DERIVED_TIMEFRAMES,
) -> dict[tuple[date, Timeframe], ConsistencyReport]:
    """:func:`compare_with_exchange` of many days, fetching each timeframe once for the range.

    Args:
        client: Open exchange client.
        symbol: ccxt unified symbol.
        derived: The stored derived candles of each day, by timeframe (``ingest.derive_days``).
        timeframes: The timeframes to compare (every day must have each).
    """
    days = sorted(derived)
    if not days:
        return {}
    start, end = day_start_ms(days[0]), day_start_ms(days[-1]) + DAY_MS
    batches = await asyncio.gather(
        *(client.fetch_candles(symbol, tf, start, end) for tf in timeframes))
    reports = {}
    for timeframe, batch in zip(timeframes, batches, strict=True):
        theirs = {**_table_values(batch.table), **_candle_values(batch.candles)}
        for day in days:
            lo = day_start_ms(day)
            day_theirs = {t: v for t, v in theirs.items() if lo <= t < lo + DAY_MS}
            ours = _table_values(derived[day][timeframe])
            reports[(day, timeframe)] = replace(
                _compare(ours, day_theirs), lost_minutes=flagged_times(derived[day][timeframe]))
    return reports


Values = dict[int, tuple[Decimal, ...]]


def _compare(ours: Values, theirs: Values) -> ConsistencyReport:
    mismatches = [
        Mismatch(open_ms, name, str(mine), str(other))
        for open_ms in sorted(ours.keys() & theirs.keys())
        for name, mine, other in zip(COMPARED_FIELDS, ours[open_ms], theirs[open_ms], strict=True)
        if mine != other
    ]
    return ConsistencyReport(
        compared=len(ours.keys() & theirs.keys()),
        mismatches=tuple(mismatches),
        only_ours=tuple(sorted(ours.keys() - theirs.keys())),
        only_exchange=tuple(sorted(theirs.keys() - ours.keys())),
    )


def _candle_values(candles: Sequence[OHLCVData]) -> Values:
    return {datetime_to_ms(c.timestamp): tuple(getattr(c, name) for name in COMPARED_FIELDS)
            for c in candles}


def _table_values(table: pa.Table) -> Values:
    times = table.column(TIMESTAMP).cast(pa.int64()).to_pylist()
    columns = [table.column(name).to_pylist() for name in COMPARED_FIELDS]
    return dict(zip(times, zip(*columns, strict=True), strict=True))
