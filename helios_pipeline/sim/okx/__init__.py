"""The simulated OKX v5 spot venue: a second venue over the same market, for cross-exchange checks.

Modules:
    app: ``OkxSimExchange`` and ``build_okx_app`` (instruments, candles, tickers, books, trades).
    venue: instruments, the venue basis and candles seen through OKX's ticks and lots.
    quotes: tickers, books and recent trades as OKX writes them.
    params: query checks, OKX error codes and per-endpoint rate limits.
"""
