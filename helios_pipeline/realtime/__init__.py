"""The realtime path: the stream service (ccxt.pro -> validation -> WAL -> Redis) and live candles.

Modules:
    service: ``StreamService``, the long-running asyncio service behind ``helios stream``.
    runner: ``run_with_status`` and ``top_symbols`` for ``helios stream``.
    config: ``StreamConfig``, everything the service needs, built from ``Settings``.
    feeds: the ccxt.pro boundary: streaming exchange class, subscriptions, reconnects, watchdog.
    convert: ccxt parsed trades and tickers -> exact ticks.
    queue: ``TickQueue``, the bounded queue between the feeds and the writer (shedding policy).
    pipeline: ``TickPipeline``, scalar validation, quarantine and the durable writer.
    health: the service's counters and its one-line status (published by ``storage.hot``).
    candles: ``LiveCandleBuilder``, trades -> 1m candles closed on the minute boundary.
    live: ``LiveCandles``, the service's builders and their writer to the hot tier.
    reconcile: live 1m candles compared with the exchange's REST candles.
    shards: ``helios stream --shards N``: symbols split over processes, old logs replayed.
"""
