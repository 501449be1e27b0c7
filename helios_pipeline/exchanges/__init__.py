"""Exchange access through ccxt: the client, its resilient call and the parsing boundary.

Modules:
    client: ``ExchangeClient``, markets, paginated candles and tickers (exact decimals).
    config: ``ExchangeConfig``, what a client is built from.
    resilient: ``ResilientCaller``, breaker -> rate limiter -> in-flight cap -> retries.
    ratelimit: ``AdaptiveRateLimiter``, weight budget fed by the exchange's headers.
    breaker: ``CircuitBreaker``, 30 s then 5 min recovery windows.
    retry: failure classification and the backoff policy.
    errors: typed errors that say what failed and what to do.
    ccxt_adapter: the ccxt boundary: exchange classes, URL overrides, row parsing.
"""
