"""``indicators_<tf>_matches_batch_check``: stored indicators equal a fresh batch computation.

For a sample of each stored day's rows, the check reads the candle files directly (the day and
the :data:`~helios_pipeline.query.indicators.WARMUP_BARS` candles before it), recomputes every
indicator with :func:`helios_pipeline.signals.frame.indicator_frame` and compares, 1e-9 relative
(price-like columns relative to the price). It catches a stored table that went stale (candles
re-fetched after it was written) or was computed by different code.
"""


from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import StorageResource
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.query.indicators import WARMUP_BARS
from helios_pipeline.signals.frame import COLUMNS, DEFAULT_PARAMS, indicator_frame
from helios_pipeline.storage.paths import indicators_path
from helios_pipeline.storage.signal_files import load_table

SAMPLE_ROWS = 8
RTOL = 1e-9
OSCILLATORS = ("rsi", "adx")


def check_name(timeframe: Timeframe) -> str:
    """``indicators_1h_matches_batch_check``."""
    return f"indicators_{timeframe.value}_matches_batch_check"


def build_indicator_check(partitions: dg.MultiPartitionsDefinition, asset: dg.AssetKey,
                          timeframe: Timeframe) -> dg.AssetChecksDefinition:
    """The sample recomputation check of one indicator asset."""

    @dg.asset_check(
        asset=asset, name=check_name(timeframe), partitions_def=partitions,
        description=(f"{SAMPLE_ROWS} rows of the stored day, spread over it, equal a fresh batch "
                     "computation from the candle files to 1e-9 relative."),
    )
    def _check(context: dg.AssetCheckExecutionContext,
               storage: StorageResource) -> dg.AssetCheckResult:
        p = SymbolDay.from_key(partitions, context.partition_key)
        stored = load_table(indicators_path(storage.root, p.symbol, timeframe, p.day))
        fresh = _fresh(storage, p, timeframe)
        sample = stored.iloc[np.unique(np.linspace(0, len(stored) - 1, SAMPLE_ROWS).astype(int))]
        worst, where = _compare(sample, fresh)
        return dg.AssetCheckResult(
            passed=worst <= RTOL,
            metadata={"compared_rows": dg.MetadataValue.int(len(sample)),
                      "max_relative_difference": dg.MetadataValue.float(worst),
                      "worst": dg.MetadataValue.text(where or "none")},
        )

    return _check


def _fresh(storage: StorageResource, p: SymbolDay, timeframe: Timeframe) -> pd.DataFrame:
    """Indicators recomputed from the candle files: the day plus the candles before it."""
    days_back = -(-WARMUP_BARS * timeframe.ms // 86_400_000) * 2 + 1
    candles = storage.candles().load_frame(p.symbol, timeframe, p.day - timedelta(days_back),
                                           p.day, as_float=True)
    first = int((candles.index < pd.Timestamp(p.day, tz="UTC")).sum())
    candles = candles.iloc[max(0, first - WARMUP_BARS):]
    if len(candles) < DEFAULT_PARAMS.longest:
        return pd.DataFrame(np.nan, index=candles.index, columns=list(COLUMNS))
    return indicator_frame(candles)


def _compare(sample: pd.DataFrame, fresh: pd.DataFrame) -> tuple[float, str]:
    """Largest relative difference over the sample's cells, and where it is."""
    missing = sample.index.difference(fresh.index)
    if len(missing):
        return float("inf"), f"{missing[0]}: no such candle in the candle files any more"
    names = list(COLUMNS)
    ours = sample[names].to_numpy(dtype=np.float64)
    theirs = fresh.reindex(sample.index)[names].to_numpy(dtype=np.float64)
    price = np.abs(sample["close"].to_numpy(dtype=np.float64))[:, None]
    floor = np.where(np.isin(names, OSCILLATORS), 100.0, price)
    base = np.maximum(np.abs(theirs), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = np.abs(ours - theirs) / base
    both_missing = np.isnan(ours) & np.isnan(theirs)
    difference = np.where(both_missing, 0.0, np.nan_to_num(difference, nan=np.inf))
    flat = int(np.argmax(difference))
    row, column = divmod(flat, len(names))
    worst = float(difference[row, column])
    if worst == 0.0:
        return 0.0, ""
    return worst, (f"{sample.index[row]} {names[column]}: stored {ours[row, column]!r}, "
                   f"fresh {theirs[row, column]!r}")
