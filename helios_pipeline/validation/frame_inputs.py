"""Reading the columns the validation rules need from a candle or ticker DataFrame.

Timestamps become ms epoch ints (from a ``timestamp`` column or the index, integers or tz-aware
datetimes), prices and volumes the float64 the rules compare, whatever the column holds
(floats, nullable integers, ``Decimal`` objects, text); a frame the rules cannot read raises
:class:`FrameInputError` saying which column and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.validation.rules import is_absent, to_float

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

MAX_ABS_TS_MS = 253_402_300_800_000


class FrameInputError(ValueError):
    """A frame lacks a column the rules need, or holds timestamps that are not ms epoch times."""


def frame_timestamps(frame: pd.DataFrame) -> Ints:
    """Open (or exchange) times in ms from the ``timestamp`` column, else the index.

    Raises:
        FrameInputError: No timestamp, a missing one, naive datetimes, a sub-millisecond part, or
            a value outside years 1..9999.
    """
    source: Any = frame[TIMESTAMP] if TIMESTAMP in frame.columns else frame.index
    is_time = isinstance(source.dtype, pd.DatetimeTZDtype)
    if (is_time or _is_numeric(source.dtype, "iu")) and source.hasnans:
        raise FrameInputError("The timestamp has missing values; quarantine those rows first.")
    if is_time:
        times = pd.DatetimeIndex(source)
        whole = times.as_unit("ms")
        if not bool((whole == times).all()):
            raise FrameInputError("Timestamps must be whole milliseconds (ms epoch).")
        values = np.asarray(whole.asi8, dtype=np.int64)
    elif _is_numeric(source.dtype, "iu"):
        values = np.asarray(source.to_numpy(dtype=np.int64), dtype=np.int64)
    else:
        raise FrameInputError(
            f"The timestamp ({TIMESTAMP!r} column or index) must be ms epoch integers or tz-aware "
            f"datetimes, not {source.dtype}."
        )
    if values.size and int(np.abs(values).max()) > MAX_ABS_TS_MS:
        raise FrameInputError(f"A timestamp is outside years 1..9999 (|ms| > {MAX_ABS_TS_MS}).")
    return values


def float_column(frame: pd.DataFrame, name: str) -> Floats:
    """A required column as the float64 the rules compare (NaN where not a number).

    Raises:
        FrameInputError: The column is missing.
    """
    if name not in frame.columns:
        raise FrameInputError(f"The frame has no {name!r} column; columns: {list(frame.columns)}.")
    column = frame[name]
    if _is_numeric(column.dtype, "fiu"):
        return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return np.fromiter(map(to_float, column.tolist()), dtype=np.float64, count=len(column))


def _is_numeric(dtype: Any, kinds: str) -> bool:
    """A numpy or pandas-extension numeric dtype of those kinds (bools excluded)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in kinds
    numpy_type = getattr(dtype, "numpy_dtype", None)  # Int64, Float64, ...
    return isinstance(numpy_type, np.dtype) and numpy_type.kind in kinds


def optional_column(frame: pd.DataFrame, name: str) -> tuple[Floats, Bools]:
    """An optional column as floats and where a value is present (``rules.is_absent``)."""
    n = len(frame)
    if name not in frame.columns:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    if _is_numeric(frame[name].dtype, "fiu"):
        values = float_column(frame, name)
        return values, ~np.isnan(values)
    items = frame[name].tolist()
    present = np.fromiter((not is_absent(x) for x in items), dtype=bool, count=n)
    values = np.fromiter((np.nan if is_absent(x) else to_float(x) for x in items),
                         dtype=np.float64, count=n)
    return values, present
