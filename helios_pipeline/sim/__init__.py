"""The simulated venues: local servers that speak Binance's and OKX's real wire formats.

A program of its own (it imports only ``domain``): the real ccxt and ccxt.pro clients talk to it
over HTTP and websockets, so tests, the demo and benchmarks exercise the real client code
offline.

Modules and sub-packages:
    server: ``SimExchangeServer`` (background thread) and ``serve_forever`` (foreground).
    faults: the fault-injection spec grammar, its parser and runtime state.
    admin: the ``/_sim/*`` endpoints every venue shares (faults, stats, reset).
    wire: 8-place decimals, JSON and stable seeds.
    market/: the simulated market both venues share: seeded and replayed 1m sources, kline
        blocks, the feed (intervals, the still-open candle), synthetic trades, symbol rules.
    binance/: Binance spot REST (the app, query checks, request weights and budget, quotes).
    okx/: OKX v5 public REST over the same market (a venue basis, its own ticks and lots).
    ws/: Binance market streams (``/ws``, ``/stream``): connections, fan-out, per-symbol
        drivers, payloads, control frames and websocket faults.
"""
