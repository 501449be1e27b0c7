"""Storage tiers: the file layout, atomic writes, warm candle partitions and the SQLite catalog.

Modules:
    paths: the one place that knows where every file lives under the data root.
    atomic: crash-safe, all-or-nothing file writes.
    candles: ``CandleStore``, exact-decimal candle partitions (Parquet or CSV), one file per day.
    metadata: ``MetadataStore``, SQLite markets, configs and the versioned partition catalog.
"""
