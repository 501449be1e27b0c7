"""Derived candles from a day's 1m Arrow table, exactly as ``domain.resample`` defines them.

The bulk path of :func:`helios_pipeline.domain.resample.aggregate_candles`: the same buckets and
the same values, computed with Arrow's exact ``decimal128`` sums instead of Python ``Decimal``s,
so a derived partition has the same bytes whichever path built it (``test_range_ingest.py``
compares them). A bucket with minutes missing is built from the minutes that exist and flagged
``partial_bucket``; a sum is null when any of its minutes lacks the value (a partial sum would be
invented).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.domain.columns import (
    ANOMALY_FLAGS,
    CLOSE,
    CLOSE_TIME,
    HIGH,
    IS_VALIDATED,
    LOW,
    OPEN,
    QUOTE_VOLUME,
    TAKER_BUY_QUOTE_VOLUME,
    TAKER_BUY_VOLUME,
    TIMESTAMP,
    TRADES,
    VALIDATION_SCORE,
    VOLUME,
)
from helios_pipeline.domain.resample import PARTIAL_BUCKET
from helios_pipeline.domain.schema import OHLCV_SCHEMA, TIMESTAMP_TYPE, VALIDATION_TYPES
from helios_pipeline.domain.timeframe import Bucket, Timeframe

_BUCKET = "bucket"
_ROW = "row"  # the minute's position: open and close come from a bucket's first and last rows
_EVERY = pc.ScalarAggregateOptions(skip_nulls=False)  # null as soon as one minute lacks it
_VALUES = [
    (HIGH, "max"), (LOW, "min"),
    (VOLUME, "sum", _EVERY), (QUOTE_VOLUME, "sum", _EVERY), (TRADES, "sum", _EVERY),
    (TAKER_BUY_VOLUME, "sum", _EVERY), (TAKER_BUY_QUOTE_VOLUME, "sum", _EVERY),
    (IS_VALIDATED, "all"), (VALIDATION_SCORE, "min"),
]
_AGGREGATES = [*_VALUES, (_ROW, "min"), (_ROW, "max"), (_ROW, "count")]


def aggregate_table(minutes: pa.Table, target: Timeframe | Bucket) -> pa.Table:
    """Aggregate a table of 1m candles (sorted, unique open times) into ``target`` candles.

    Args:
        minutes: Table with :data:`~helios_pipeline.domain.schema.OHLCV_SCHEMA`.
        target: The longer timeframe: a stored one or any :class:`Bucket` (``30m``, ``1w``).

    Returns:
        A table with the same schema, one row per bucket that has at least one minute.
    """
    bucket = target if isinstance(target, Bucket) else Bucket.of(target)
    if bucket.ms == Timeframe.M1.ms:
        raise ValueError("aggregate_table makes longer candles from 1m ones; target is 1m.")
    opens = minutes.column(TIMESTAMP).cast(pa.int64())
    buckets = pc.subtract(opens, pc.modulo(pc.subtract(opens, bucket.offset_ms), bucket.ms))
    rows = pa.array(range(minutes.num_rows), pa.int64())
    grouped = (minutes.append_column(_BUCKET, buckets).append_column(_ROW, rows)
               .group_by(_BUCKET, use_threads=False)
               .aggregate(_AGGREGATES)
               .sort_by(_BUCKET))
    starts = grouped.column(_BUCKET)
    counts = grouped.column(f"{_ROW}_count").to_pylist()
    expected = bucket.ms // Timeframe.M1.ms
    columns = {
        TIMESTAMP: starts.cast(TIMESTAMP_TYPE),
        OPEN: minutes.column(OPEN).take(grouped.column(f"{_ROW}_min")),
        CLOSE: minutes.column(CLOSE).take(grouped.column(f"{_ROW}_max")),
        CLOSE_TIME: pc.add(starts, bucket.ms - 1),
        ANOMALY_FLAGS: _flags(minutes, buckets, starts.to_pylist(),
                              [n < expected for n in counts]),
        **{name: grouped.column(f"{name}_{how}") for name, how, *_ in _VALUES},
    }
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in OHLCV_SCHEMA],
                                schema=OHLCV_SCHEMA)


def _flags(
    minutes: pa.Table, buckets: pa.Array, starts: list[int], partial: list[bool]
) -> pa.Array:
    """Each bucket's flags: every flag of its minutes, plus ``partial_bucket``, sorted."""
    flags: dict[int, set[str]] = {start: {PARTIAL_BUCKET} if short else set()
                                  for start, short in zip(starts, partial, strict=True)}
    column = minutes.column(ANOMALY_FLAGS)
    flagged = pc.greater(pc.list_value_length(column), 0)
    for bucket, names in zip(pc.filter(buckets, flagged).to_pylist(),
                             pc.filter(column, flagged).to_pylist(), strict=True):
        flags[bucket].update(names)
    return pa.array([sorted(flags[start]) for start in starts], VALIDATION_TYPES[ANOMALY_FLAGS])
