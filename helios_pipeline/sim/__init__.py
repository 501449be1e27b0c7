"""Simulated Binance spot exchange: a local HTTP server the real ccxt client can talk to.

Modules: ``market`` (seeded and replayed candle sources), ``feed`` (kline windows, intervals,
the still-open candle), ``trades`` (synthetic trades consistent with the
candles), ``quotes`` (tickers and books), ``faults`` (fault-injection spec), ``limits``
(request weights and the per-minute budget), ``params`` (query checks and Binance errors),
``api`` (the aiohttp app) and ``server`` (``SimExchangeServer``, ``serve_forever``).

A second venue, OKX v5 spot REST over the same market (``SimExchangeServer(venue="okx")``):
``okx`` (the aiohttp app), ``okx_venue`` (instruments, venue basis, candles), ``okx_quotes``
(tickers, books, trades) and ``okx_params`` (query checks, OKX error codes, rate limits).

Binance market streams on the same port (``/ws``, ``/stream``): ``ws`` (endpoints, routes),
``ws_hub`` (connections, fan-out, faults), ``ws_driver`` (one symbol's streams), ``ws_plan``
(the trades of a minute), ``ws_payloads`` (stream names, events), ``ws_protocol`` (control
frames), ``ws_conn`` (a client, ``WsConfig``) and ``ws_faults`` (websocket fault kinds).
"""
