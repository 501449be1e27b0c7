"""Trading-input assets downstream of the candles: indicators, market regime, grid levels.

All are partitioned by symbol x day like the candles and depend on the candle assets, so the UI
shows them below ``ohlcv_1h``/``ohlcv_1d``/``ohlcv_1m``. They read through
``MarketDataQueryResource`` (the same ``MarketDataQuery`` research code uses) and compute with
``signals``; files are written by ``storage.signal_files`` at the ``storage.paths`` locations.

* ``indicators_1h`` / ``indicators_1d``: every indicator column beside each candle's open time,
  warmed up on the 250 candles before the day (``query.indicators``).
* ``market_regime``: the regime of each 1h bar of the day, with its evidence.
* ``grid_levels``: the grid suggested from the week of 1m candles ending with the day; the
  suggestion is the materialisation's metadata (and a JSON file).

``indicators_<tf>_matches_batch_check`` recomputes a sample of each stored day independently
(straight from the candle files, ``signals.frame.indicator_frame``) and compares.
"""


from datetime import date, timedelta

import dagster as dg

from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import MarketDataQueryResource, StorageResource
from helios_pipeline.defs.signal_checks import build_indicator_check
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.query.indicators import WARMUP_BARS
from helios_pipeline.query.trading import GridTradingDataProvider, SignalDataPipeline
from helios_pipeline.signals.frame import COLUMNS
from helios_pipeline.signals.regime import explain
from helios_pipeline.storage.paths import grid_path, indicators_path, regime_path
from helios_pipeline.storage.signal_files import store_json, store_table

INDICATOR_TIMEFRAMES = (Timeframe.H1, Timeframe.D1)
MARKET_REGIME = dg.AssetKey("market_regime")
GRID_LEVELS = dg.AssetKey("grid_levels")
GRID_WINDOW_DAYS = 7
GROUP = "signals"


def indicator_key(timeframe: Timeframe) -> dg.AssetKey:
    """``indicators_1h`` / ``indicators_1d``."""
    return dg.AssetKey(f"indicators_{timeframe.value}")


def build_signal_assets(partitions: dg.MultiPartitionsDefinition
                        ) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """The signal assets and their checks for the symbol x day ``partitions``."""
    assets = [_indicator_asset(partitions, tf) for tf in INDICATOR_TIMEFRAMES]
    assets += [_regime_asset(partitions), _grid_asset(partitions)]
    checks = [build_indicator_check(partitions, indicator_key(tf), tf)
              for tf in INDICATOR_TIMEFRAMES]
    return assets, checks


def _indicator_asset(partitions: dg.MultiPartitionsDefinition,
                     timeframe: Timeframe) -> dg.AssetsDefinition:
    @dg.asset(
        key=indicator_key(timeframe), partitions_def=partitions, deps=[candle_key(timeframe)],
        kinds={"parquet"}, group_name=GROUP, automation_condition=dg.AutomationCondition.eager(),
        description=(f"RSI(14), MACD(12,26,9), Bollinger(20,2), ATR(14) and ADX(14) of each "
                     f"{timeframe.value} candle of the day (TA-Lib definitions), warmed up on "
                     f"the {WARMUP_BARS} candles before it: indicators_{timeframe.value}_YYYYMMDD."
                     "parquet beside the candles. NaN where an indicator is still warming up."),
    )
    def _indicators(context: dg.AssetExecutionContext, market_data: MarketDataQueryResource,
                    storage: StorageResource) -> dg.MaterializeResult[None]:
        p = SymbolDay.from_key(partitions, context.partition_key)
        query = market_data.query()
        try:
            table = query.indicators(p.symbol, timeframe, p.day, _next(p.day), short_ok=True)
        finally:
            query.close()
        path = indicators_path(storage.root, p.symbol, timeframe, p.day)
        store_table(path, table)
        warm = table[list(COLUMNS)].notna().all(axis=1)
        last = table.iloc[-1] if len(table) else None
        metadata: dict[str, dg.MetadataValue] = {
            "candles": dg.MetadataValue.int(len(table)),
            "warm_rows": dg.MetadataValue.int(int(warm.sum())),
            "path": dg.MetadataValue.path(str(path)),
        }
        if last is not None and bool(warm.iloc[-1]):
            metadata.update({f"last_{name}": dg.MetadataValue.float(float(last[name]))
                             for name in ("rsi", "macd", "atr", "adx")})
        return dg.MaterializeResult(metadata=metadata)

    return _indicators


def _regime_asset(partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=MARKET_REGIME, partitions_def=partitions, deps=[candle_key(Timeframe.H1)],
        kinds={"parquet"}, group_name=GROUP, automation_condition=dg.AutomationCondition.eager(),
        description=("Trending / ranging / volatile for each 1h bar of the day, with the ADX "
                     "and Bollinger-width evidence that decided it (rules in signals.regime): "
                     "market_regime_YYYYMMDD.parquet."),
    )
    def market_regime(context: dg.AssetExecutionContext, market_data: MarketDataQueryResource,
                      storage: StorageResource) -> dg.MaterializeResult[None]:
        p = SymbolDay.from_key(partitions, context.partition_key)
        query = market_data.query()
        try:
            table = SignalDataPipeline(query).regime(p.symbol, "1h", p.day, _next(p.day),
                                                     short_ok=True)
        finally:
            query.close()
        path = regime_path(storage.root, p.symbol, p.day)
        store_table(path, table)
        counts = table["regime"].value_counts().to_dict()
        return dg.MaterializeResult(metadata={
            "regime_at_close": dg.MetadataValue.text(str(table["regime"].iloc[-1])),
            "why": dg.MetadataValue.text(explain(table.iloc[-1])),
            "hours_by_regime": dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()}),
            "path": dg.MetadataValue.path(str(path)),
        })

    return market_regime


def _grid_asset(partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=GRID_LEVELS, partitions_def=partitions, deps=[OHLCV_1M, candle_key(Timeframe.H1)],
        kinds={"json"}, group_name=GROUP, automation_condition=dg.AutomationCondition.eager(),
        description=(f"Grid suggestion (range, levels, spacing, prices, reasoning) from the "
                     f"{GRID_WINDOW_DAYS} days of 1m candles ending with the day: volume "
                     "profile, support/resistance and ATR (method in signals.grid). Shown as "
                     "metadata; also grid_levels_YYYYMMDD.json."),
    )
    def grid_levels(context: dg.AssetExecutionContext, market_data: MarketDataQueryResource,
                    storage: StorageResource) -> dg.MaterializeResult[None]:
        p = SymbolDay.from_key(partitions, context.partition_key)
        query = market_data.query()
        try:
            start = p.day - timedelta(days=GRID_WINDOW_DAYS - 1)
            grid = GridTradingDataProvider(query).grid_suggestion(p.symbol, start, _next(p.day))
        finally:
            query.close()
        values = {"symbol": p.symbol, "day": p.day.isoformat(), **grid.as_metadata()}
        path = grid_path(storage.root, p.symbol, p.day)
        store_json(path, values)
        return dg.MaterializeResult(metadata={
            "lower": dg.MetadataValue.float(grid.lower),
            "upper": dg.MetadataValue.float(grid.upper),
            "levels": dg.MetadataValue.int(grid.levels),
            "spacing": dg.MetadataValue.text(grid.spacing),
            "step": dg.MetadataValue.float(grid.step),
            "regime": dg.MetadataValue.text(grid.regime),
            "prices": dg.MetadataValue.json([round(x, 8) for x in grid.prices]),
            "reasoning": dg.MetadataValue.md("\n".join(f"- {r}" for r in grid.reasoning)),
            "path": dg.MetadataValue.path(str(path)),
        })

    return grid_levels


def _next(day: date) -> date:
    return day + timedelta(days=1)
