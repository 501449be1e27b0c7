"""The pandera model of a stored candle partition: what a file must hold to be served.

:class:`StoredCandles` checks stored candles of one or many days as an Arrow-backed pandas
frame (:func:`stored_frame`: exact ``decimal128(38, 18)`` columns, compared exactly by Arrow),
each row tagged with the UTC day of the partition it came from (``partition_day``):

* dtypes: UTC millisecond open times; prices and sizes ``decimal128(38, 18)`` (exact decimals,
  never floats); integer trade counts and close times; a boolean ``is_validated``;
* values: prices > 0; volumes >= 0; taker-buy volume <= volume; ``high >= max(open, close)``,
  ``low <= min(open, close)``; every row validated with a score in [0, 1];
* time: open times on the minute grid, inside their partition's day, strictly increasing
  within it.

It is the contract of stored data, not the validation rules (those decide what is stored, see
``validation.schemas``): a partition failing it was damaged or written by a bug, so the
``ohlcv_1m_schema_check`` that runs it blocks the derived timeframes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.typing import Series

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.schema import DECIMAL_TYPE
from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, day_start_ms

PARTITION_DAY = "partition_day"
_DECIMAL = {"pyarrow_dtype": DECIMAL_TYPE}
_INT = {"pyarrow_dtype": pyarrow.int64()}
_MS = {"pyarrow_dtype": pyarrow.timestamp("ms", tz="UTC")}


class StoredCandles(pa.DataFrameModel):
    """Stored 1m partitions, one row per candle (see the module docstring)."""

    timestamp: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_MS)
    open: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, gt=0)
    high: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, gt=0)
    low: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, gt=0)
    close: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, gt=0)
    volume: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, ge=0)
    quote_volume: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, ge=0, nullable=True)
    taker_buy_volume: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, ge=0,
                                                       nullable=True)
    taker_buy_quote_volume: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_DECIMAL, ge=0,
                                                             nullable=True)
    trades: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_INT, ge=0, nullable=True)
    close_time: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_INT, nullable=True)
    is_validated: Series[pd.ArrowDtype] = pa.Field(
        dtype_kwargs={"pyarrow_dtype": pyarrow.bool_()}, isin=[True])
    validation_score: Series[pd.ArrowDtype] = pa.Field(
        dtype_kwargs={"pyarrow_dtype": pyarrow.float64()}, ge=0.0, le=1.0)
    partition_day: Series[pd.ArrowDtype] = pa.Field(dtype_kwargs=_MS)

    class Config:
        """Other columns (``anomaly_flags``) may be present; every listed one is required."""

        strict = False
        coerce = False

    @pa.dataframe_check(name="ohlc_consistent")
    def ohlc_consistent(cls, df: pd.DataFrame) -> Any:
        """``high >= max(open, close)`` and ``low <= min(open, close)`` (so ``high >= low``)."""
        return ((df["high"] >= df["open"]) & (df["high"] >= df["close"])
                & (df["low"] <= df["open"]) & (df["low"] <= df["close"]))

    @pa.dataframe_check(name="taker_buy_within_volume")
    def taker_buy_within_volume(cls, df: pd.DataFrame) -> Any:
        """Taker-buy volume, when reported, does not exceed the volume."""
        return (df["taker_buy_volume"] <= df["volume"]).fillna(True)

    @pa.dataframe_check(name="aligned_inside_partition_day")
    def aligned_inside_partition_day(cls, df: pd.DataFrame) -> Any:
        """Open times are whole minutes inside the day of the partition they were stored in."""
        opens, start = _ms(df[TIMESTAMP]), _ms(df[PARTITION_DAY])
        inside = (opens % MINUTE_MS == 0) & (opens >= start) & (opens < start + DAY_MS)
        return pd.Series(inside, index=df.index)

    @pa.dataframe_check(name="strictly_increasing")
    def strictly_increasing(cls, df: pd.DataFrame) -> Any:
        """Within a partition, each open time is after the one before it."""
        opens, days = _ms(df[TIMESTAMP]), _ms(df[PARTITION_DAY])
        later = np.ones(len(opens), dtype=bool)
        later[1:] = (days[1:] != days[:-1]) | (opens[1:] > opens[:-1])
        return pd.Series(later, index=df.index)


def _ms(series: pd.Series) -> np.ndarray[Any, Any]:
    return np.asarray(pyarrow.array(series.array).cast(pyarrow.int64()), dtype=np.int64)


def stored_frame(tables: Sequence[tuple[date, pyarrow.Table]]) -> pd.DataFrame:
    """One Arrow-backed frame of stored partitions, each row tagged with its partition's day.

    Args:
        tables: ``(day, table)`` of each partition, tables as ``CandleStore.load_table`` reads
            them.
    """
    tagged = []
    for day, table in tables:
        start = pyarrow.scalar(day_start_ms(day), pyarrow.int64()).cast(_MS["pyarrow_dtype"])
        tagged.append(table.append_column(PARTITION_DAY, pyarrow.repeat(start, table.num_rows)))
    if not tagged:
        return pd.DataFrame()
    frame: pd.DataFrame = pyarrow.concat_tables(tagged).to_pandas(types_mapper=pd.ArrowDtype)
    return frame


def stored_failures(frame: pd.DataFrame) -> list[tuple[int, str]]:
    """Run :class:`StoredCandles` lazily; ``(row position, check)`` of every failure, sorted.

    A failure that is not about a row (a missing column, a wrong dtype) has row ``-1`` and the
    check names the column (``dtype('...')`` for a wrong type).
    """
    try:
        StoredCandles.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        found = set()
        for check, column, index in zip(cases["check"], cases["column"], cases["index"],
                                        strict=True):
            row = int(index) if index is not None and index == index else -1
            found.add((row, str(check) if row >= 0 else f"{column}: {check}"))
        return sorted(found)
    return []
