"""Candle tables (exact Arrow decimals) as the float frames the validation engines read.

The engines compare float64s; each is the correctly rounded double of the exact decimal (what
``rules.to_float`` gives for a ``Decimal``; computed by ``domain.decimal_float``, three times
faster than through the decimal's text), so an Arrow table and the same candles as
``OHLCVData`` are judged identically.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from helios_pipeline.domain.columns import (
    CLOSE,
    HIGH,
    LOW,
    OPEN,
    TAKER_BUY_VOLUME,
    TIMESTAMP,
    TRADES,
    VOLUME,
)
from helios_pipeline.domain.decimal_float import decimal_to_float

FRAME_COLUMNS = (OPEN, HIGH, LOW, CLOSE, VOLUME, TAKER_BUY_VOLUME)


def candle_frame(table: pa.Table) -> pd.DataFrame:
    """The frame engine's input for candles in ``table`` (absent taker-buy volume: NaN)."""
    columns = {TIMESTAMP: table.column(TIMESTAMP).cast(pa.int64()).to_numpy()}
    for name in FRAME_COLUMNS:
        columns[name] = decimal_to_float(table.column(name)).to_numpy(zero_copy_only=False)
    if TRADES in table.column_names:  # absent counts become NaN: "not reported"
        columns[TRADES] = table.column(TRADES).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return pd.DataFrame(columns)
