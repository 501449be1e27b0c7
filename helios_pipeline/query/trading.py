"""What a grid bot and a signal strategy read: ``GridTradingDataProvider``, ``SignalDataPipeline``.

Both read candles through :class:`~helios_pipeline.query.engine.MarketDataQuery` (every tier,
stitched) and compute with ``signals``; nothing here stores anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helios_pipeline.query.args import Moment
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.query.errors import QueryError
from helios_pipeline.query.indicators import WARMUP_BARS
from helios_pipeline.signals.grid import GridRules, GridSuggestion, suggest_grid
from helios_pipeline.signals.levels import Level, LevelRules, find_levels
from helios_pipeline.signals.profile import VolumeProfile
from helios_pipeline.signals.regime import WARMING_UP, RegimeRules, classify_regime

DEFAULT_GRID_RULES = GridRules()
DEFAULT_REGIME_RULES = RegimeRules()


class GridTradingDataProvider:
    """Grid inputs for a symbol: a grid suggestion, support/resistance, profile, volatility.

    Args:
        query: Where candles come from.
        rules: Parameters of the grid method (``signals.grid``).
    """

    def __init__(self, query: MarketDataQuery, rules: GridRules = DEFAULT_GRID_RULES) -> None:
        self.query = query
        self.rules = rules

    def grid_suggestion(self, symbol: str, start: Moment, end: Moment | None = None,
                        exchange: str | None = None) -> GridSuggestion:
        """A grid from the 1m candles in ``[start, end)`` (method: ``signals.grid``).

        Raises:
            QueryError: Bad arguments, or too few candles for a grid.
        """
        candles = self._minutes(symbol, start, end, exchange)
        try:
            return suggest_grid(candles, self.rules)
        except ValueError as exc:
            raise QueryError(f"grid_suggestion({symbol!r}, {start!r}, {end!r}): {exc}") from None

    def levels(self, symbol: str, start: Moment, end: Moment | None = None,
               timeframe: str = "1h", exchange: str | None = None) -> list[Level]:
        """Support and resistance from ``timeframe`` candles (method: ``signals.levels``).

        Raises:
            QueryError: Bad arguments, or too few candles.
        """
        candles = self.query.ohlcv(symbol, timeframe, start=start, end=end, exchange=exchange,
                                   as_float=True)
        try:
            return find_levels(candles, LevelRules())
        except ValueError as exc:
            raise QueryError(f"levels({symbol!r}, {start!r}, {end!r}): {exc}") from None

    def volume_profile(self, symbol: str, start: Moment, end: Moment | None = None,
                       bins: int = 50, exchange: str | None = None) -> VolumeProfile:
        """Volume by price (point of control, value area) over ``[start, end)``."""
        return self.query.volume_profile(symbol, start, end, bins=bins, exchange=exchange)

    def atr(self, symbol: str, timeframe: str = "1h", start: Moment | None = None,
            end: Moment | None = None, exchange: str | None = None) -> pd.Series:
        """ATR(14) per candle (warmed up on the candles before ``start``)."""
        return self.query.indicators(symbol, timeframe, start, end, exchange)["atr"]

    def _minutes(self, symbol: str, start: Moment, end: Moment | None,
                 exchange: str | None) -> pd.DataFrame:
        return self.query.ohlcv(symbol, "1m", start=start, end=end, exchange=exchange,
                                as_float=True)


class SignalDataPipeline:
    """Indicators and regime of a symbol, the same numbers in research, backfills and live.

    Args:
        query: Where candles come from.
        warmup: Candles before each window used to warm the indicators up.
        rules: Regime thresholds (``signals.regime``).
    """

    def __init__(self, query: MarketDataQuery, warmup: int = WARMUP_BARS,
                 rules: RegimeRules = DEFAULT_REGIME_RULES) -> None:
        self.query = query
        self.warmup = warmup
        self.rules = rules

    def indicators(self, symbol: str, timeframe: str = "1h", start: Moment | None = None,
                   end: Moment | None = None, exchange: str | None = None) -> pd.DataFrame:
        """Every standard indicator per candle (see ``MarketDataQuery.indicators``)."""
        return self.query.indicators(symbol, timeframe, start, end, exchange, self.warmup)

    def regime(self, symbol: str, timeframe: str = "1h", start: Moment | None = None,
               end: Moment | None = None, exchange: str | None = None,
               short_ok: bool = False) -> pd.DataFrame:
        """Regime per candle with its evidence (method: ``signals.regime``).

        With ``short_ok``, too short a history gives ``warming_up`` rows instead of an error.

        Raises:
            QueryError: Bad arguments, or too few candles.
        """
        window = self.query.ohlcv(symbol, timeframe, start=start, end=end, exchange=exchange,
                                  as_float=True)
        before = (self.query.ohlcv(symbol, timeframe, end=start, limit=self.warmup,
                                   exchange=exchange, as_float=True)
                  if start is not None else window.iloc[:0])
        candles = pd.concat([before, window]) if len(before) else window
        if short_ok and len(candles) < self.rules.shortest_history:
            return pd.DataFrame({"regime": WARMING_UP}, index=window.index).assign(
                adx=np.nan, bb_width=np.nan, bb_width_median=np.nan, width_ratio=np.nan)
        try:
            return classify_regime(candles, self.rules).iloc[len(before):]
        except ValueError as exc:
            raise QueryError(f"regime({symbol!r}, {timeframe!r}, {start!r}, {end!r}): "
                             f"{exc}") from None

    def latest(self, symbol: str, timeframe: str = "1h",
               exchange: str | None = None) -> dict[str, object]:
        """The last closed candle's indicators and regime."""
        table = self.query.indicators(symbol, timeframe, None, None, exchange, self.warmup)
        regime = self.regime(symbol, timeframe, exchange=exchange)
        row: dict[str, object] = {"open_time": table.index[-1]}
        row.update({str(name): value for name, value in table.iloc[-1].items()})
        row["regime"] = regime["regime"].iloc[-1]
        return row
