"""The candle IO manager: stored partitions as DataFrames, for research code and downstream assets.

The candle assets write their own files (atomically, with the catalog); this IO manager only
reads them back, so that ``defs.load_asset_value("ohlcv_1m", partition_key="2024-05-01|BTCUSDT")``
returns that day's candles and an asset that takes ``ohlcv_1h: pd.DataFrame`` as an input gets
the hours of its partition (or of its range). The frame is indexed by UTC open time with exact
``Decimal`` prices (``CandleStore.load_frame``); a selection spanning several symbols gets a
``symbol`` column. Days whose daily files were removed after archiving are read from the cold
archive's month files.
"""

from __future__ import annotations

from datetime import date
from itertools import groupby

import dagster as dg
import pandas as pd
import pyarrow as pa

from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.domain.formats import StorageFormat
from helios_pipeline.domain.timeframe import DAY_MS, Timeframe, day_start_ms
from helios_pipeline.storage.archive import CandleArchive
from helios_pipeline.storage.candle_codec import to_frame
from helios_pipeline.storage.candles import CandleStore

SYMBOL_COLUMN = "symbol"


class CandleIOManager(dg.ConfigurableIOManager):
    """Reads ``ohlcv_<tf>`` partitions from the data root; never writes (the assets do)."""

    data_dir: str = "local/data"
    storage_format: str = "parquet"
    exchange: str = "binance"
    archive_url: str | None = None

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
            frame = self._with_archived(store, symbol, timeframe, days, frame)
            if len(days) < (max(days) - min(days)).days + 1:  # not contiguous: drop the others
                frame = frame[[ts.date() in days for ts in frame.index]]
            frames.append(frame.assign(**{SYMBOL_COLUMN: symbol}))
        if len(frames) == 1:
            return frames[0].drop(columns=SYMBOL_COLUMN)
        return pd.concat(frames)

    def _with_archived(self, store: CandleStore, symbol: str, timeframe: Timeframe,
                       days: set[date], frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` plus the archived rows of the days that have no daily file any more."""
        gone = sorted(d for d in days if store.find(symbol, timeframe, d) is None)
        if not gone:
            return frame
        archive = CandleArchive.for_data_dir(store.data_dir, self.archive_url)
        tables = [archive.load_range(self.exchange, symbol, timeframe, day_start_ms(d),
                                     day_start_ms(d) + DAY_MS) for d in gone]
        archived = to_frame(pa.concat_tables(tables), as_float=False)
        if not len(archived):
            return frame
        return pd.concat([frame, archived]).sort_index() if len(frame) else archived
