"""The realtime path: the stream service (ccxt.pro -> validation -> WAL -> Redis) and live candles.

Modules:
    service: ``StreamService``, the long-running asyncio service behind ``helios stream``.
    runner: ``run_with_status`` and ``top_symbols`` for ``helios stream``.
    config: ``StreamConfig``, everything the service needs, built from ``Settings``.
    feeds: the ccxt.pro boundary: streaming exchange class, subscriptions, reconnects, watchdog.
    convert: ccxt parsed trades and tickers -> exact ticks.
    queue: ``TickQueue``, the bounded queue between the feeds and the writer (shedding policy).
    pipeline: ``TickPipeline``, scalar validation, quarantine and the durable writer.
    health: counters and the health snapshot published to Redis.
    candles: ``LiveCandleBuilder``, trades -> 1m candles closed on the minute boundary.
    hot_candles: live candles in the hot tier (Redis), for reconciliation with ``ohlcv_1m``.
"""
