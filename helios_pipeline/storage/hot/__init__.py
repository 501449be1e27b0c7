"""HOT tier: the last hour of validated ticks in Redis, with no acknowledged tick ever lost.

Modules:
    keys: every Redis key the tier uses.
    client: the one factory for Redis connections (bounded timeouts).
    codec: the tick wire encoding shared by the log and Redis.
    store: ``HotStore``, streams and hashes written by one atomic script per batch; reads.
    wal: ``WriteAheadLog``, append-only segments, group commit, checkpoints.
    wal_files: the log's on-disk format: framing, segment files, the folder lock.
    writer: ``DurableTickWriter``, acknowledges ticks once fsynced in the log.
    pusher: ``RedisPusher``, delivers acknowledged ticks to Redis exactly once.
    live_candles: live 1m candles in Redis, for reconciliation with ``ohlcv_1m``.
    hash_writer: ``HashWriter``, expiring hashes in one transaction, an outage logged once.
    outage: ``OutageLog``, a writer's failed Redis writes counted and logged once per outage.
    health: the stream service's health hash (published and read).
    live_indicators: the latest live indicator values per symbol and timeframe.
    divergence: the current cross-exchange divergence per symbol (written and read).
"""
