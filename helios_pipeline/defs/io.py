"""The candle IO manager: stored partitions as DataFrames, for research code and downstream assets.

The candle assets write their own files (atomically, with the catalog); this IO manager only
reads them back, so that ``defs.load_asset_value("ohlcv_1m", partition_key="2024-05-01|BTCUSDT")``
returns that day's candles and an asset that takes ``ohlcv_1h: pd.DataFrame`` as an input gets
the hours of its partition (or of its range). The frame is indexed by UTC open time with exact
``Decimal`` prices (``CandleStore.load_frame``); a selection spanning several symbols gets a
``symbol`` column.
"""

from __future__ import annotations

from itertools import groupby

import dagster as dg
import pandas as pd

from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.domain.formats import StorageFormat
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.candles import CandleStore

SYMBOL_COLUMN = "symbol"


class CandleIOManager(dg.ConfigurableIOManager):
    """Reads ``ohlcv_<tf>`` partitions from the data root; never writes (the assets do)."""

    data_dir: str = "local/data"
    storage_format: str = "parquet"

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        """Nothing to write: the candle assets store their files themselves."""
        if obj is not None:
            raise dg.Failure(f"{context.asset_key.to_user_string()} returned a value; candle "
                             "assets write their own files and return MaterializeResult.")

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """The candles of the partitions ``context`` asks for, in time order."""
        timeframe = Timeframe.parse(context.asset_key.path[-1].removeprefix("ohlcv_"))
        partitions = context.asset_partitions_def
        if not isinstance(partitions, dg.MultiPartitionsDefinition):
            raise dg.Failure(f"{context.asset_key.to_user_string()} is not partitioned by "
                             "symbol x day.")
        wanted = sorted((SymbolDay.from_key(partitions, k)
                         for k in context.asset_partition_keys),
                        key=lambda p: (p.symbol, p.day))
        fmt: StorageFormat = "csv" if self.storage_format == "csv" else "parquet"
        store = CandleStore(self.data_dir, fmt=fmt)
        frames = []
        for symbol, group in groupby(wanted, key=lambda p: p.symbol):
            days = {p.day for p in group}
            frame = store.load_frame(symbol, timeframe, min(days), max(days))
            if len(days) < (max(days) - min(days)).days + 1:  # not contiguous: drop the others
                frame = frame[[ts.date() in days for ts in frame.index]]
            frames.append(frame.assign(**{SYMBOL_COLUMN: symbol}))
        if len(frames) == 1:
            return frames[0].drop(columns=SYMBOL_COLUMN)
        return pd.concat(frames)
