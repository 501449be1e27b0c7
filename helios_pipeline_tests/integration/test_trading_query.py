"""Indicators, regime and grid suggestions read through ``MarketDataQuery`` from stored candles.

Three days of BTC/USDT from the simulated Binance are ingested by the batch path; the facades must
give what the pure functions (and TA-Lib) give on the same stored candles.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import talib

from helios_pipeline.batch.ingest import Stores, ingest_range
from helios_pipeline.domain.timeframe import datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.query.errors import QueryError
from helios_pipeline.query.trading import GridTradingDataProvider, SignalDataPipeline
from helios_pipeline.signals.frame import COLUMNS
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline_tests.unit.signals_reference import assert_matches

SYMBOL = "BTC/USDT"
DAYS = [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
TODAY = datetime(2024, 5, 4, tzinfo=UTC)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, sim_exchange: SimExchangeServer) -> Path:
    data = tmp_path_factory.mktemp("trading") / "data"

    async def run() -> None:
        async with ExchangeClient("binance", base_url=sim_exchange.base_url) as client:
            stores = Stores(CandleStore(data), MetadataStore(data / "metadata.sqlite"),
                            QuarantineStore(data))
            await ingest_range(client, stores, SYMBOL, DAYS)

    asyncio.run(run())
    return data


def query(root: Path) -> MarketDataQuery:
    return MarketDataQuery(root, clock_ms=lambda: datetime_to_ms(TODAY),
                           start_date="2024-04-01")


def test_indicators_of_a_window_are_warmed_up_on_the_candles_before_it(root: Path) -> None:
    q = query(root)
    hours = q.ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY, as_float=True)
    table = q.indicators(SYMBOL, "1h", start=DAYS[1], end=TODAY)
    assert list(table.columns) == ["close", *COLUMNS]
    assert table.index.equals(hours.index[24:])
    high, low, close = (hours[name].to_numpy() for name in ("high", "low", "close"))
    assert_matches(table["rsi"], talib.RSI(close, 14)[24:])
    assert_matches(table["atr"], talib.ATR(high, low, close, 14)[24:])
    assert_matches(table["adx"], talib.ADX(high, low, close, 14)[24:])
    assert_matches(table["bb_upper"], talib.BBANDS(close, 20, 2.0, 2.0, 0)[0][24:])
    assert_matches(table["macd"], talib.MACD(close, 12, 26, 9)[0][24:],
                   scale=float(np.median(close)))
    assert not table.iloc[-1].isna().any()


def test_too_few_candles_and_bad_arguments_are_refused(root: Path) -> None:
    q = query(root)
    with pytest.raises(QueryError, match=r"indicators\('BTC/USDT', '1d'.*fewer than"):
        q.indicators(SYMBOL, "1d", start=DAYS[0], end=TODAY)
    with pytest.raises(QueryError, match="warmup=-1"):
        q.indicators(SYMBOL, "1h", start=DAYS[1], end=TODAY, warmup=-1)
    with pytest.raises(QueryError, match="symbol="):
        q.indicators("NOPE/USDT", "1h")


def test_grid_provider_suggests_a_grid_inside_the_traded_range(root: Path) -> None:
    q = query(root)
    provider = GridTradingDataProvider(q)
    grid = provider.grid_suggestion(SYMBOL, DAYS[0], TODAY)
    minutes = q.ohlcv(SYMBOL, "1m", start=DAYS[0], end=TODAY, as_float=True)
    assert minutes["low"].min() <= grid.lower < grid.upper <= minutes["high"].max()
    assert len(grid.prices) == grid.levels + 1
    assert grid.reasoning
    profile = provider.volume_profile(SYMBOL, DAYS[0], TODAY)
    assert profile.value_area_low <= profile.poc <= profile.value_area_high
    levels = provider.levels(SYMBOL, DAYS[0], TODAY, timeframe="15m")
    assert levels
    assert all(DAYS[0] <= level.last_touch.date() <= DAYS[-1]  # type: ignore[attr-defined]
               for level in levels)
    assert provider.atr(SYMBOL, "1h", DAYS[1], TODAY).notna().all()


def test_signal_pipeline_gives_regime_and_the_latest_values(root: Path) -> None:
    pipeline = SignalDataPipeline(query(root))
    regime = pipeline.regime(SYMBOL, "15m", start=DAYS[1], end=TODAY)
    assert regime.index[0] == datetime(2024, 5, 2, tzinfo=UTC)
    assert set(regime["regime"]) <= {"trending", "ranging", "volatile"}
    latest = pipeline.latest(SYMBOL, "1h")
    assert latest["open_time"] == datetime(2024, 5, 3, 23, tzinfo=UTC)
    assert latest["regime"] in {"trending", "ranging", "volatile"}
    assert 0 <= float(latest["rsi"]) <= 100  # type: ignore[arg-type]
