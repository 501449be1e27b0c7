"""Derived candles that lost a minute to quarantine say so: the ``quarantined_minute`` flag.

A bucket missing a minute the exchange never sent is ``partial_bucket`` already; a bucket whose
minute was sent but quarantined (a bad print, or a real move nobody confirmed) also misses that
minute's prices, and its high or low may be one no exchange printed. Such a bucket carries
``quarantined_minute`` so that the derived view, the consistency check against the exchange's
own candle and the UI show the difference instead of a silently different candle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date

import pyarrow as pa

from helios_pipeline.domain.columns import ANOMALY_FLAGS, TIMESTAMP
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.storage.quarantine import QuarantineStore

QUARANTINED_MINUTE = "quarantined_minute"


def quarantined_minutes(store: QuarantineStore, symbol: str, day: date,
                        exchange: str | None = None) -> set[int]:
    """Open times of the day's quarantined 1m candles."""
    records = store.load_partition(symbol, Timeframe.M1, day, exchange)
    return {r.timestamp_ms for r in records if r.timestamp_ms is not None}


def flag_table(table: pa.Table, timeframe: Timeframe, lost: Iterable[int]) -> pa.Table:
    """``table`` (derived candles) with ``quarantined_minute`` on buckets holding a lost minute."""
    buckets = {timeframe.floor(ms) for ms in lost}
    if not buckets or not table.num_rows:
        return table
    times = table.column(TIMESTAMP).cast(pa.int64()).to_pylist()
    flags = table.column(ANOMALY_FLAGS).to_pylist()
    flagged = [[*(f or []), QUARANTINED_MINUTE] if t in buckets else f
               for t, f in zip(times, flags, strict=True)]
    index = table.schema.get_field_index(ANOMALY_FLAGS)
    column = pa.array(flagged, OHLCV_SCHEMA.field(ANOMALY_FLAGS).type)
    return table.set_column(index, table.schema.field(index), column)


def flag_candles(candles: Sequence[OHLCVData], timeframe: Timeframe, lost: Iterable[int]
                 ) -> list[OHLCVData]:
    """:func:`flag_table` for candle objects (the per-day derive path)."""
    buckets = {timeframe.floor(ms) for ms in lost}
    return [replace(c, anomaly_flags=(*c.anomaly_flags, QUARANTINED_MINUTE))
            if datetime_to_ms(c.timestamp) in buckets else c for c in candles]


def flagged_times(table: pa.Table) -> tuple[int, ...]:
    """Open times of the rows of a derived table flagged ``quarantined_minute``."""
    times = table.column(TIMESTAMP).cast(pa.int64()).to_pylist()
    flags = table.column(ANOMALY_FLAGS).to_pylist()
    return tuple(t for t, f in zip(times, flags, strict=True) if f and QUARANTINED_MINUTE in f)
