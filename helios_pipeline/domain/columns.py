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

# What two sources of the same candle must agree on exactly (derived vs the exchange's own
# candles, live candles built from trades vs REST).
COMPARED_FIELDS = (OPEN, HIGH, LOW, CLOSE, VOLUME)

# Validation outcome carried by candle files (``OHLCVData.is_validated`` and friends); not the
# exchange's data, so not part of ``OHLCV_COLUMNS``. ``anomaly_flags`` is list<string> in Parquet
# and ';'-joined text in CSV.
IS_VALIDATED = "is_validated"
VALIDATION_SCORE = "validation_score"
ANOMALY_FLAGS = "anomaly_flags"
VALIDATION_COLUMNS = (IS_VALIDATED, VALIDATION_SCORE, ANOMALY_FLAGS)
CANDLE_FILE_COLUMNS = (*OHLCV_COLUMNS, *VALIDATION_COLUMNS)

# Ticker (``MarketDataPoint``) frame columns; ``received_at`` is the ms epoch of receipt.
PRICE = "price"
BID = "bid"
ASK = "ask"
RECEIVED_AT = "received_at"
TICKER_COLUMNS = (TIMESTAMP, PRICE, VOLUME, BID, ASK, RECEIVED_AT)
