"""Simulated Binance spot exchange: a local HTTP server the real ccxt client can talk to.

Modules: ``market`` (seeded and replayed candle sources), ``feed`` (kline windows, intervals,
the still-open candle), ``trades`` (synthetic trades consistent with the
candles), ``quotes`` (tickers and books), ``faults`` (fault-injection spec), ``limits``
(request weights and the per-minute budget), ``params`` (query checks and Binance errors),
``api`` (the aiohttp app) and ``server`` (``SimExchangeServer``, ``serve_forever``).
"""
