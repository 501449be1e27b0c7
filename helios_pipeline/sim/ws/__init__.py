"""Binance market streams of the simulated exchange, on the same port as REST.

Modules:
    routes: the ``/ws`` and ``/stream`` endpoints and ``WsConfig``.
    hub: ``WsHub``, connections, subscriptions, fan-out and websocket faults.
    driver: ``SymbolDriver``, one symbol's trades, klines and tickers on the market clock.
    plan: the trades of one minute, cut from the REST market so candles reconcile.
    payloads: stream names and event payloads, field for field.
    protocol: control frames (SUBSCRIBE, LIST_SUBSCRIPTIONS, errors).
    conn: one client connection and its outbound queue.
    faults: websocket fault kinds (disconnects, stalls, bursts, malformed frames, refusals).
"""
