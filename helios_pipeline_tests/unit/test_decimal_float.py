"""``decimal_to_float`` gives exactly ``float(str(d))`` for every decimal the schema holds."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.decimal_float import decimal_to_float
from helios_pipeline.domain.schema import OHLCV_SCHEMA

DECIMAL = OHLCV_SCHEMA.field("open").type  # decimal128(38, 18)
values = st.decimals(min_value=Decimal("-99999999999999999999"),
                     max_value=Decimal("99999999999999999999"), places=18,
                     allow_nan=False, allow_infinity=False)


def expected(column: list[Decimal | None]) -> list[float | None]:
    return [None if d is None else float(str(d)) for d in column]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), values,
                          st.decimals(places=2, min_value=0, max_value=10**6),
                          st.decimals(places=8, min_value=0, max_value=10**8)), max_size=40))
def test_every_value_is_the_nearest_double(column: list[Decimal | None]) -> None:
    array = pa.array([None if d is None else str(d) for d in column],
                     type=pa.string()).cast(DECIMAL)
    assert decimal_to_float(array).to_pylist() == expected(column)


def test_chunked_and_sliced_columns_and_hard_cases() -> None:
    texts = ["60000.12", "0.1", "0.000000000000000001", "123456789012.12345678",
             "99999999999999999999.999999999999999999", "-0.3", "9007199254740993", None,
             "0.30000000000000001"]
    array = pa.array(texts).cast(DECIMAL)
    chunked = pa.chunked_array([array.slice(0, 4), array.slice(4)])
    want = expected([None if t is None else Decimal(t) for t in texts])
    assert decimal_to_float(chunked).to_pylist() == want
    assert decimal_to_float(array.slice(2, 5)).to_pylist() == want[2:7]


@pytest.mark.parametrize("scale", [-3, 0, 2, 8, 12, 25, 30])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_other_decimal_types(scale: int, data: st.DataObject) -> None:
    """Scales the schema does not use take the same exact paths (or the text route)."""
    digits = st.integers(min_value=-(10**34) + 1, max_value=10**34 - 1)
    small = st.integers(min_value=-(2**54), max_value=2**54)
    integers = data.draw(st.lists(st.one_of(digits, small), max_size=30))
    column = [Decimal(i).scaleb(-scale) for i in integers]
    array = pa.array(column, type=pa.decimal128(38, scale))
    assert decimal_to_float(array).to_pylist() == expected(column)


def test_quotients_around_two_to_the_53() -> None:
    """Where the guessed quotient is near the edge of exact doubles, the result stays exact."""
    column = [Decimal(2**53 + d).scaleb(-8) for d in range(-3, 4)]
    column += [-value for value in column] + [Decimal(2**53 + 1).scaleb(-12)]
    array = pa.array(column, type=DECIMAL)
    assert decimal_to_float(array).to_pylist() == expected(column)
