"""The query engine: ``MarketDataQuery`` answers by symbol, timeframe and time from every tier.

Routing between the hot tier (Redis), the warm daily files, the rolling intraday file and the cold
archive, stitching at the seams, the short-lived cache, the volume profile and the
cross-exchange view. Import from the modules (``query.engine``); this file does no work.
"""
