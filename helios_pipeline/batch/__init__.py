"""The batch path as plain Python (no Dagster): the Dagster assets, the CLI and research call it.

Modules:
    ingest: a range of days of one symbol at exchange speed (one fetch, per-day validation,
        derived timeframes from memory, the catalog in one transaction).
    aggregate: derived candles from a day's 1m Arrow table, exactly as domain.resample.
    partition_checks: the checks of stored partitions, one outcome per partition.
    ohlcv: the per-day reference path (per-candle validation) and its report.
    derived: 5m..1d partitions aggregated from stored 1m candles, checked against the exchange.
    markets: load an exchange's markets and trading rules into the metadata store.
"""
