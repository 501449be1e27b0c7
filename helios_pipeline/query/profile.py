"""Volume profile for the query API: the computation lives in ``signals.profile``.

Kept so that ``helios_pipeline.query.profile`` goes on naming the same objects; the query engine
reads the candles and hands them to the pure function.
"""

from __future__ import annotations

from helios_pipeline.signals.profile import (
    VALUE_AREA_SHARE,
    VolumeProfile,
    bin_edges,
    spread_volume,
    value_area,
    volume_profile,
)

__all__ = ["VALUE_AREA_SHARE", "VolumeProfile", "bin_edges", "spread_volume", "value_area",
           "volume_profile"]
