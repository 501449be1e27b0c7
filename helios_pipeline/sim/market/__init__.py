"""The simulated market both venues serve: 1m klines, longer intervals and the trade tape.

Modules:
    sources: ``SeededMarket`` (any symbol, any minute, deterministic) and ``ReplayMarket``
        (Binance public-data kline files).
    candles: ``KlineBlock``, columnar klines in 1e-8 units, aggregation and data-fault patches.
    feed: ``MarketFeed``, per-symbol routing, intervals and the candle still open at "now".
    trades: synthetic trades that add up to each kline exactly.
    universe: the listed symbols and their trading rules.
"""
