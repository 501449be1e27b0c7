"""Storage: where every byte lives, written atomically, read back exactly.

Modules:
    paths: the only module that knows where files live under the data root.
    atomic: crash-safe, all-or-nothing file writes (temp file, fsync, rename).
    candle_codec: candle rows <-> Arrow tables and CSV text, exact decimals.
    candles: ``CandleStore``, warm candle partitions (Parquet or CSV), one file per day.
    metadata: ``MetadataStore``, SQLite markets, configs and the versioned partition catalog.
    quarantine: ``QuarantineStore``, rejected rows with their reasons (JSON Lines).
    ticker_files: hourly ticker files and the rolling current hour, from the hot tier.
    hot/: the Redis hot tier and its write-ahead log (see ``storage.hot``).
"""
