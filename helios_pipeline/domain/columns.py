"""Column names of candle frames and files, in storage order."""

from __future__ import annotations

TIMESTAMP = "timestamp"
OPEN = "open"
HIGH = "high"
LOW = "low"
CLOSE = "close"
VOLUME = "volume"
QUOTE_VOLUME = "quote_volume"
TRADES = "trades"
TAKER_BUY_VOLUME = "taker_buy_volume"
TAKER_BUY_QUOTE_VOLUME = "taker_buy_quote_volume"
CLOSE_TIME = "close_time"

# Exact decimal columns: stored as decimal128 in Parquet and as the exchange's strings in CSV.
DECIMAL_COLUMNS = (OPEN, HIGH, LOW, CLOSE, VOLUME, QUOTE_VOLUME, TAKER_BUY_VOLUME,
                   TAKER_BUY_QUOTE_VOLUME)
OHLCV_COLUMNS = (TIMESTAMP, OPEN, HIGH, LOW, CLOSE, VOLUME, QUOTE_VOLUME, TRADES,
                 TAKER_BUY_VOLUME, TAKER_BUY_QUOTE_VOLUME, CLOSE_TIME)
