"""The Arrow schema of candle data: exact decimals, UTC millisecond open times, validation.

Shared by the exchange boundary (klines parsed straight into these columns), validation and the
candle files. ``decimal128(38, 18)`` holds every price and size an exchange sends (at most 18
decimal places and 20 integer digits); anything that does not fit is refused, never rounded.
"""

from __future__ import annotations

from types import MappingProxyType

import pyarrow as pa

from helios_pipeline.domain.columns import (
    ANOMALY_FLAGS,
    CLOSE,
    DECIMAL_COLUMNS,
    HIGH,
    IS_VALIDATED,
    LOW,
    OHLCV_COLUMNS,
    OPEN,
    TIMESTAMP,
    VALIDATION_COLUMNS,
    VALIDATION_SCORE,
    VOLUME,
)

DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18
DECIMAL_TYPE = pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
TIMESTAMP_TYPE = pa.timestamp("ms", tz="UTC")
# Columns every venue reports; the others are null when the venue does not report them.
REQUIRED_COLUMNS = (TIMESTAMP, OPEN, HIGH, LOW, CLOSE, VOLUME)
VALIDATION_TYPES: MappingProxyType[str, pa.DataType] = MappingProxyType({
    IS_VALIDATED: pa.bool_(),
    VALIDATION_SCORE: pa.float64(),
    ANOMALY_FLAGS: pa.list_(pa.field("item", pa.string(), nullable=False)),
})

OHLCV_SCHEMA = pa.schema(
    [
        pa.field(
            name,
            TIMESTAMP_TYPE if name == TIMESTAMP
            else DECIMAL_TYPE if name in DECIMAL_COLUMNS
            else pa.int64(),
            nullable=name not in REQUIRED_COLUMNS,
        )
        for name in OHLCV_COLUMNS
    ]
    + [pa.field(name, VALIDATION_TYPES[name], nullable=False) for name in VALIDATION_COLUMNS]
)
EXCHANGE_SCHEMA = pa.schema([OHLCV_SCHEMA.field(name) for name in OHLCV_COLUMNS])
