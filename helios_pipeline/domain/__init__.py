"""Pure domain types: market data points, candles, timeframes, symbols and column names."""
