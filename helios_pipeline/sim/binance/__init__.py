"""The simulated Binance spot REST API.

Modules:
    app: ``SimExchange`` (state) and ``build_app`` (the aiohttp routes, weight headers).
    params: query-parameter checks with Binance's error codes and messages.
    limits: request weights and the per-minute weight budget (429, then 418 bans).
    quotes: tickers, books and 24 h statistics derived from the feed at "now".
"""
