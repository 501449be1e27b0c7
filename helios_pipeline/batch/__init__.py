"""The batch path as plain Python (no Dagster): the Dagster assets, the CLI and research call it.

Modules:
    ohlcv: ingest symbol x day partitions: fetch, validate, store, quarantine, catalog.
    derived: 5m..1d partitions aggregated from stored 1m candles, checked against the exchange.
    markets: load an exchange's markets and trading rules into the metadata store.
"""
