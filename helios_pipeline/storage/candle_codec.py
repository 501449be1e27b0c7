"""Candle partition encoding: the Arrow schema, Parquet and CSV bytes, and reading them back.

Pure conversion between column lists, Arrow tables, file bytes and DataFrames; where the files
live and when they are written is ``storage.candles``' business. Nothing here rounds: a decimal
that does not fit ``decimal128(38, 18)`` (over 18 decimal places or 20 integer digits) raises
:class:`PrecisionError`, naming the column, the candle and the value.

Parquet bytes depend only on the table (fixed writer options, no wall-clock metadata); they are
stable for a given pyarrow version, which the footer's ``created_by`` names.

Besides the exchange's columns (``OHLCV_COLUMNS``) a file carries the validation outcome of each
candle (``VALIDATION_COLUMNS``): ``is_validated`` (bool), ``validation_score`` (float64) and
``anomaly_flags`` (list<string>; in CSV ``true``/``false``, the float's repr and the flags joined
with ``;``). Files written before those columns existed still read, with the defaults
(not validated, score 1.0, no flags).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from helios_pipeline.domain.columns import (
    ANOMALY_FLAGS,
    CANDLE_FILE_COLUMNS,
    DECIMAL_COLUMNS,
    IS_VALIDATED,
    OHLCV_COLUMNS,
    TIMESTAMP,
    VALIDATION_COLUMNS,
    VALIDATION_SCORE,
)
from helios_pipeline.domain.decimal_float import decimal_to_float
from helios_pipeline.domain.schema import (
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    EXCHANGE_SCHEMA,
    OHLCV_SCHEMA,
    VALIDATION_TYPES,
)
from helios_pipeline.domain.timeframe import ms_to_datetime

FLAG_SEPARATOR = ";"  # anomaly flags in CSV; rule names never contain it
_PARALLEL_FROM_ROWS = 100_000  # below this, starting threads costs more than they save


# Fixed so that the same table always gives the same bytes. Snappy and no dictionary pages keep
# the daily write fast (zstd level 1 is ~25% smaller but ~0.5 ms slower per 1440-row day; the cold
# archive is where size matters). Statistics only for the timestamp, the column readers filter on.
PARQUET_WRITE_OPTIONS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "compression": "snappy",
        "use_dictionary": False,
        "write_statistics": [TIMESTAMP],
        "version": "2.6",
        "data_page_version": "1.0",
        "store_schema": True,
        "write_page_index": False,
    }
)

# Column name -> Python values (Decimal / int / None); timestamps as ms epoch ints.
Columns = dict[str, list[Any]]


class PartitionError(ValueError):
    """Candles cannot form the partition they were given for (wrong day, duplicate, ...)."""


class PrecisionError(PartitionError):
    """A decimal cannot be stored without losing a digit (over 18 places or 20 integer digits)."""


# Which error a refused value gets, and why it was refused.
_Problem = tuple[type[PartitionError], str]


def to_table(columns: Columns, where: str) -> pa.Table:
    """Arrow table with :data:`OHLCV_SCHEMA`; raises instead of rounding or dropping anything.

    Args:
        columns: Values per column of :data:`CANDLE_FILE_COLUMNS`, timestamps as ms epoch ints.
        where: What the rows are (``BTC/USDT 1m 2024-01-31`` or a path), for error messages.

    Raises:
        PrecisionError: A decimal has over 18 decimal places or 20 integer digits.
        PartitionError: A value has the wrong type, is not finite, or a required one is missing.
    """
    _check_validation(columns, where)
    arrays = []
    for field in OHLCV_SCHEMA:
        values = columns[field.name]
        try:
            array = _array(values, field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
            raise _explain(values, columns[TIMESTAMP], field, where, exc) from exc
        if not field.nullable and array.null_count:
            row = values.index(None)
            raise PartitionError(
                f"{where}: {field.name} is missing for the candle at "
                f"{_moment(columns[TIMESTAMP], row)}."
            )
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=OHLCV_SCHEMA)


def _check_validation(columns: Columns, where: str) -> None:
    """The validation columns hold bools, floats in [0, 1] and tuples of flag names."""
    for name in VALIDATION_COLUMNS:
        values = columns[name]
        if _all_outcomes(name, values):  # whole-column test first: the write path stays fast
            continue
        row = next(i for i, value in enumerate(values) if not _is_outcome(name, value))
        raise PartitionError(
            f"{where}: {name}={values[row]!r} at {_moment(columns[TIMESTAMP], row)} is not a "
            "validation outcome (bool; float 0..1; tuple of flag names without ';')."
        )


def _all_outcomes(name: str, values: list[Any]) -> bool:
    if not values:
        return True
    kinds = set(map(type, values))
    if name == IS_VALIDATED:
        return kinds == {bool}
    if name == VALIDATION_SCORE:
        # a NaN hides from min/max but not from the sum
        return kinds == {float} and min(values) >= 0.0 and max(values) <= 1.0 and math.isfinite(
            sum(values))
    flags = {flag for group in values for flag in group} if kinds <= {tuple, list} else {1}
    return all(_is_flag(flag) for flag in flags)


def _is_outcome(name: str, value: object) -> bool:
    if name == IS_VALIDATED:
        return isinstance(value, bool)
    if name == VALIDATION_SCORE:
        return type(value) is float and 0.0 <= value <= 1.0
    return isinstance(value, tuple | list) and all(_is_flag(f) for f in value)


def _is_flag(flag: object) -> bool:
    return isinstance(flag, str) and bool(flag) and FLAG_SEPARATOR not in flag


def _array(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_integer(arrow_type):
        # Told the type, Arrow truncates 1.5 to 1; infer instead and accept integers only.
        inferred = pa.array(values)
        if not (pa.types.is_integer(inferred.type) or pa.types.is_null(inferred.type)):
            raise TypeError(f"expected integers, got {inferred.type}")
        return inferred.cast(arrow_type)
    if pa.types.is_decimal(arrow_type):
        # Arrow parses decimal text ~5x faster than it converts Decimal objects; the cast still
        # refuses any value that would lose a digit. Decimal.__str__ rejects non-Decimals.
        text = [None if v is None else _DECIMAL_TEXT(v) for v in values]
        return pa.array(text, type=pa.string()).cast(arrow_type)
    return pa.array(values, type=arrow_type)


_DECIMAL_TEXT = Decimal.__str__


def _explain(
    values: list[Any], open_times: list[int], field: pa.Field, where: str, exc: Exception
) -> PartitionError:
    """Error naming the first value of a column that Arrow refused (slow path, errors only)."""
    check = _decimal_problem if field.name in DECIMAL_COLUMNS else _int_problem
    for row, value in enumerate(values):
        problem = check(value)
        if problem is not None:
            error, text = problem
            return error(f"{where}: {field.name}={value!r} at {_moment(open_times, row)} {text}.")
    return PartitionError(f"{where}: column {field.name} cannot be stored: {exc}")


def _decimal_problem(value: object) -> _Problem | None:
    if value is None:
        return None
    if not isinstance(value, Decimal):
        return PartitionError, f"is a {type(value).__name__}, expected Decimal (exact money)"
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN and Infinity carry a letter here
        return PartitionError, "is not a finite number"
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:  # trailing zeros lose nothing
        digits, exponent = digits[:-1], exponent + 1
    if -exponent > DECIMAL_SCALE:
        return PrecisionError, (
            f"has {-exponent} decimal places; only {DECIMAL_SCALE} fit without losing a digit"
        )
    if len(digits) + exponent > DECIMAL_PRECISION - DECIMAL_SCALE:
        return PrecisionError, (
            f"has more than {DECIMAL_PRECISION - DECIMAL_SCALE} integer digits; it does not fit "
            "without losing a digit"
        )
    return None


def _int_problem(value: object) -> _Problem | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return PartitionError, f"is a {type(value).__name__}, expected int"
    if not -(2**63) <= value < 2**63:
        return PartitionError, "does not fit in a 64-bit integer"
    return None


def _moment(open_times: list[int], row: int) -> str:
    return ms_to_datetime(open_times[row]).isoformat()


def parquet_bytes(table: pa.Table) -> bytes:
    """Parquet file bytes of ``table``, written with :data:`PARQUET_WRITE_OPTIONS`."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_WRITE_OPTIONS)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def csv_bytes(columns: Columns) -> bytes:
    """CSV with a header; decimals in plain notation exactly as held (``format(d, 'f')``)."""
    texts: list[list[Any]] = []
    for name in CANDLE_FILE_COLUMNS:
        values = columns[name]
        if name in DECIMAL_COLUMNS:
            values = ["" if v is None else decimal_text(v) for v in values]
        elif name in VALIDATION_COLUMNS:
            values = [_validation_text(name, v) for v in values]
        texts.append(values)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CANDLE_FILE_COLUMNS)
    writer.writerows(zip(*texts, strict=True))
    return buffer.getvalue().encode("utf-8")


def _validation_text(name: str, value: Any) -> str:
    if name == IS_VALIDATED:
        return "true" if value else "false"
    if name == VALIDATION_SCORE:
        return repr(value)
    return FLAG_SEPARATOR.join(value)


def decimal_text(value: Decimal) -> str:
    """Exact plain-notation text of a Decimal (``0.00000001``, never ``1E-8``); CSV and SQLite.

    ``Decimal(decimal_text(d)) == d`` for every finite ``d``; trailing zeros are kept.

    Raises:
        ValueError: ``value`` is NaN or infinite; such a value is never money.
    """
    if not value.is_finite():
        raise ValueError(f"{value!r} is not a finite number; it cannot be stored as money.")
    return format(value, "f")


def read_table(path: Path) -> pa.Table:
    """Table with :data:`OHLCV_SCHEMA` from a ``.parquet`` or ``.csv`` partition file.

    Raises:
        PartitionError: The file is not a candle partition (or holds a value the schema refuses).
    """
    if path.suffix == ".csv":
        return to_table(read_csv_columns(path), str(path))
    return read_parquet(path)


def read_table_bytes(data: bytes, suffix: str, where: str = "partition") -> pa.Table:
    """:func:`read_table` of a file's bytes (``suffix``: ``.parquet`` or ``.csv``).

    Raises:
        PartitionError: The bytes are not a candle partition.
    """
    if suffix == ".csv":
        text = io.StringIO(data.decode("utf-8"), newline="")
        return to_table(_csv_columns(list(csv.reader(text)), where), where)
    return _normalised(pq.read_table(pa.BufferReader(data)), where)


def read_parquet(path: Path) -> pa.Table:
    """Table with :data:`OHLCV_SCHEMA` from a Parquet partition file.

    Raises:
        PartitionError: The file lacks a column or a column cannot be cast to the schema.
    """
    # one small file: ParquetFile without threads reads it in about half ``pq.read_table``'s time
    with pq.ParquetFile(path) as parquet:
        table = parquet.read(use_threads=False)
    return _normalised(table, str(path))


def _normalised(table: pa.Table, path: str) -> pa.Table:
    if table.schema.equals(OHLCV_SCHEMA):
        return table
    try:
        if not set(VALIDATION_COLUMNS) & set(table.column_names):  # written before validation
            table = with_validation_defaults(table.select(list(OHLCV_COLUMNS))
                                             .cast(EXCHANGE_SCHEMA))
        return table.select(list(CANDLE_FILE_COLUMNS)).cast(OHLCV_SCHEMA)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PartitionError(f"{path}: not a candle partition ({exc}).") from exc


def with_validation_defaults(table: pa.Table) -> pa.Table:
    """A table of the exchange's columns with the validation columns at their defaults."""
    n = table.num_rows
    defaults = {IS_VALIDATED: [False] * n, VALIDATION_SCORE: [1.0] * n, ANOMALY_FLAGS: [[]] * n}
    for name in VALIDATION_COLUMNS:
        table = table.append_column(OHLCV_SCHEMA.field(name),
                                    pa.array(defaults[name], VALIDATION_TYPES[name]))
    return table


def table_columns(table: pa.Table) -> Columns:
    """Python values of a table with :data:`OHLCV_SCHEMA`, timestamps as ms epoch ints."""
    columns: Columns = {name: table.column(name).to_pylist() for name in CANDLE_FILE_COLUMNS}
    columns[TIMESTAMP] = table.column(TIMESTAMP).cast(pa.int64()).to_pylist()
    columns[ANOMALY_FLAGS] = [tuple(flags) for flags in columns[ANOMALY_FLAGS]]
    return columns


def read_csv_columns(path: Path) -> Columns:
    """Python values of a CSV partition, decimals exactly as written (``Decimal(text)``).

    Raises:
        PartitionError: Wrong header, ragged row or unparsable value.
    """
    with path.open(newline="", encoding="utf-8") as stream:
        return _csv_columns(list(csv.reader(stream)), str(path))


def _csv_columns(rows: list[list[str]], path: str) -> Columns:
    header = tuple(rows[0]) if rows else ()
    if header not in (CANDLE_FILE_COLUMNS, OHLCV_COLUMNS):  # the second: before validation
        raise PartitionError(f"{path}: header is not {','.join(CANDLE_FILE_COLUMNS)}.")
    width = len(header)
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise PartitionError(f"{path}: line {line} has {len(row)} fields, expected {width}.")
    raw = list(zip(*rows[1:], strict=True)) or [() for _ in header]
    try:
        columns = {
            name: [_parse_text(name, text) for text in texts]
            for name, texts in zip(header, raw, strict=True)
        }
    except (ValueError, InvalidOperation) as exc:
        raise PartitionError(f"{path}: unreadable value ({exc!r}).") from exc
    if header == OHLCV_COLUMNS:
        count = len(rows) - 1
        columns.update({IS_VALIDATED: [False] * count, VALIDATION_SCORE: [1.0] * count,
                        ANOMALY_FLAGS: [()] * count})
    return columns


def _parse_text(name: str, text: str) -> Any:
    if name in VALIDATION_COLUMNS:
        return _parse_validation(name, text)
    if text == "":
        return None
    return Decimal(text) if name in DECIMAL_COLUMNS else int(text)


def _parse_validation(name: str, text: str) -> bool | float | tuple[str, ...]:
    if name == IS_VALIDATED:
        if text not in ("true", "false"):
            raise ValueError(f"{name}={text!r} is not true or false")
        return text == "true"
    if name == VALIDATION_SCORE:
        return float(text)
    return tuple(text.split(FLAG_SEPARATOR)) if text else ()


def to_frame(table: pa.Table, as_float: bool,
             extra: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """DataFrame indexed by the UTC open time; nullable ints as ``Int64``.

    Built column by column from the Arrow buffers (numbers without a copy where Arrow allows):
    for the 1,000-row answers trading code asks for most, ``Table.to_pandas`` and ``set_index``
    cost about twice as much as the columns themselves.

    Args:
        table: Table with :data:`OHLCV_SCHEMA`.
        as_float: Decimal columns as ``float64`` (each the nearest double to the exact value)
            instead of ``Decimal`` objects.
        extra: More columns (array-likes of the table's length) appended after the table's.
    """
    floats = _float_columns(table) if as_float else {}
    columns: dict[str, Any] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        if field.name == TIMESTAMP:
            continue
        if field.name in floats:
            columns[field.name] = floats[field.name]
        elif pa.types.is_int64(field.type):
            columns[field.name] = _integers(column)
        elif pa.types.is_floating(field.type) or pa.types.is_boolean(field.type):
            columns[field.name] = column.to_numpy()
        elif field.name == ANOMALY_FLAGS:
            columns[field.name] = _flag_tuples(column)
        else:  # Decimal objects
            columns[field.name] = column.to_pandas().to_numpy()
    columns.update(extra or {})
    times = table.schema.field(TIMESTAMP).type
    index = pd.DatetimeIndex(table.column(TIMESTAMP).to_numpy(), name=TIMESTAMP,
                             dtype=pd.DatetimeTZDtype(times.unit, times.tz))
    return pd.DataFrame(columns, index=index, copy=False)


def _float_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """The decimal columns as float64, each value correctly rounded (``domain.decimal_float``).

    A direct Arrow cast may be an ulp off. Long tables convert their columns in parallel
    threads (the compiled conversion releases the GIL): a year of 1m in 22 ms instead of 37.
    """
    names = [name for name in DECIMAL_COLUMNS if name in table.column_names]

    def convert(name: str) -> np.ndarray:
        values: np.ndarray = decimal_to_float(table.column(name)).to_numpy(zero_copy_only=False)
        return values

    if table.num_rows < _PARALLEL_FROM_ROWS:
        return {name: convert(name) for name in names}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return dict(zip(names, pool.map(convert, names), strict=True))


def _integers(column: pa.ChunkedArray) -> pd.arrays.IntegerArray:
    """A nullable int64 column as pandas' ``Int64`` (no null: no fill pass)."""
    if column.null_count == 0:
        values = column.to_numpy()
        return pd.arrays.IntegerArray(values, np.zeros(values.size, dtype=bool))
    return pd.arrays.IntegerArray(column.fill_null(0).to_numpy(),
                                  column.is_null().to_numpy())


def _flag_tuples(column: pa.ChunkedArray) -> np.ndarray:
    """Each row's flag names as a tuple, as a candle holds them.

    Most rows have no flag: they share one empty tuple, and only flagged rows become Python
    objects (``to_pandas`` makes an array per row: 80 ms for a year of 1m, against about 1 ms).
    """
    lists = column.combine_chunks()
    tuples = np.empty(len(lists), dtype=object)
    tuples.fill(())
    counts = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    flagged = np.flatnonzero(counts)
    for row, flags in zip(flagged, lists.take(pa.array(flagged)).to_pylist(), strict=True):
        tuples[row] = tuple(flags)
    return tuples
