"""Every type shared between layers, pure (no I/O): imports nothing else of the platform.

Modules: ``models`` (``MarketDataPoint``, ``OHLCVData``, ``Market``), ``ticks`` (``Tick``),
``live_candle`` (``LiveCandle``), ``quarantine`` (``QuarantineRecord``), ``timeframe``,
``symbols`` (the one symbol converter), ``columns``, ``formats`` (``StorageFormat``), ``gaps``
and ``resample`` (exact aggregation of 1m candles).
"""
