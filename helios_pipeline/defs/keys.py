"""Asset and check keys shared by the asset, check and sensor modules."""

import dagster as dg

from helios_pipeline.domain.timeframe import Timeframe

OHLCV_1M = dg.AssetKey("ohlcv_1m")


def candle_key(timeframe: Timeframe) -> dg.AssetKey:
    """Asset key of the candles of ``timeframe`` (``ohlcv_5m``)."""
    return dg.AssetKey(f"ohlcv_{timeframe.value}")
