"""Checking and converting indicator inputs: one place that says what bad input is.

Indicators take pandas Series or 1-D numpy arrays and give back the same kind. Every error is a
``ValueError`` that names the argument, says what was wrong with it and what to pass instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
PriceInput = pd.Series | FloatArray


@dataclass(frozen=True)
class Prepared:
    """Inputs as float64 arrays, plus the index to put back on the result (``None``: arrays)."""

    arrays: tuple[FloatArray, ...]
    index: pd.Index | None

    def wrap(self, values: FloatArray, name: str) -> PriceInput:
        """``values`` as a Series on the inputs' index, or as the array itself."""
        if self.index is None:
            return values
        return pd.Series(values, index=self.index, name=name)


def check_period(value: int, name: str) -> int:
    """``value`` if it is a positive whole number of rows, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name}={value!r}: must be a positive whole number of candles.")
    return int(value)


def prepare(inputs: Sequence[tuple[str, object]], min_rows: int, period_name: str) -> Prepared:
    """Check named inputs and convert them to float64 arrays.

    Args:
        inputs: ``(argument name, Series or array)`` pairs of the same length.
        min_rows: Fewest rows accepted (the indicator's period).
        period_name: Name of the period argument, for the too-few-rows message.

    Raises:
        ValueError: Mixed Series and arrays, different lengths or indexes, not 1-D, NaN or
            infinite prices, unsorted or duplicate timestamps, or fewer rows than ``min_rows``.
    """
    series = [isinstance(value, pd.Series) for _, value in inputs]
    if any(series) and not all(series):
        names = ", ".join(name for name, _ in inputs)
        raise ValueError(f"{names}: pass all as pandas Series or all as numpy arrays, not a mix.")
    index = _common_index(inputs) if all(series) else None
    arrays = tuple(_to_array(name, value) for name, value in inputs)
    first_name, first = inputs[0][0], arrays[0]
    for (name, _), array in zip(inputs, arrays, strict=True):
        if array.size != first.size:
            raise ValueError(f"{name} has {array.size} rows but {first_name} has {first.size}; "
                             "pass columns of the same candles.")
    if first.size < min_rows:
        raise ValueError(f"{first_name} has {first.size} rows, fewer than {period_name}="
                         f"{min_rows}; pass more candles or a shorter {period_name}.")
    return Prepared(arrays=arrays, index=index)


def _to_array(name: str, value: object) -> FloatArray:
    if not isinstance(value, pd.Series | np.ndarray):
        raise ValueError(f"{name}: expected a pandas Series or numpy array, got "
                         f"{type(value).__name__}.")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: values are not numbers ({error}).") from error
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one column of prices, got shape {array.shape}.")
    bad = ~np.isfinite(array)
    if bad.any():
        where = int(np.argmax(bad))
        raise ValueError(f"{name} has a NaN or infinite value at row {where} "
                         f"({_label(value, where)}); drop or repair that candle first, "
                         "indicators never guess a price.")
    return array


def _label(value: object, row: int) -> str:
    if isinstance(value, pd.Series):
        return f"index {value.index[row]!r}"
    return f"position {row}"


def _common_index(inputs: Sequence[tuple[str, object]]) -> pd.Index:
    first_name, first = inputs[0]
    assert isinstance(first, pd.Series)  # noqa: S101 - checked by the caller
    index = first.index
    for name, value in inputs[1:]:
        assert isinstance(value, pd.Series)  # noqa: S101
        if not value.index.equals(index):
            raise ValueError(f"{name} and {first_name} have different indexes; "
                             "pass columns of the same candles.")
    if isinstance(index, pd.DatetimeIndex):
        if index.has_duplicates:
            duplicate = index[index.duplicated()][0]
            raise ValueError(f"{first_name} has duplicate timestamps ({duplicate}); "
                             "keep one candle per open time.")
        if not index.is_monotonic_increasing:
            raise ValueError(f"{first_name} timestamps are not in ascending order; "
                             "sort the candles by open time first.")
    return index
