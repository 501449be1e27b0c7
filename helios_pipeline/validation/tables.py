"""Candle tables (exact Arrow decimals) as the float frames the validation engines read.

The engines compare float64s; each comes from the exact decimal through its text, which is the
correctly rounded double (what ``rules.to_float`` gives for a ``Decimal``), so an Arrow table
and the same candles as ``OHLCVData`` are judged identically.
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

FRAME_COLUMNS = (OPEN, HIGH, LOW, CLOSE, VOLUME, TAKER_BUY_VOLUME)


def candle_frame(table: pa.Table) -> pd.DataFrame:
    """The frame engine's input for candles in ``table`` (absent taker-buy volume: NaN)."""
    frame = pd.DataFrame({TIMESTAMP: table.column(TIMESTAMP).cast(pa.int64()).to_numpy()})
    for name in FRAME_COLUMNS:
        frame[name] = table.column(name).cast(pa.string()).cast(pa.float64()).to_numpy(
            zero_copy_only=False)
    if TRADES in table.column_names:  # absent counts become NaN: "not reported"
        frame[TRADES] = table.column(TRADES).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return frame
