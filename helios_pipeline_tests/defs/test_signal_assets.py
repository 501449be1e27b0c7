"""Signal assets: lineage from the candles, stored indicators, regime, grid metadata, the check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import talib

from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.build import SIGNALS_JOB, build_defs
from helios_pipeline.defs.signal_checks import check_name
from helios_pipeline.defs.signals import GRID_LEVELS, MARKET_REGIME, indicator_key
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.paths import grid_path, indicators_path
from helios_pipeline.storage.signal_files import load_table, store_table
from helios_pipeline_tests.unit.signals_reference import assert_matches

DAYS = (date(2024, 3, 4), date(2024, 3, 5))
SYMBOL = "BTC/USDT"
KEY = f"{DAYS[1]}|BTCUSDT"


@pytest.fixture
def filled(settings: Settings) -> Iterator[tuple[Settings, dg.DagsterInstance]]:
    settings = replace(settings, symbols=(SYMBOL,), start_date="2024-03-01")
    # Closed when the test ends: an instance left to the garbage collector leaves Dagster's
    # current-instance context pointing at nothing, and later definitions fail to load.
    with dg.instance_for_test() as instance:
        assert run_backfill([SYMBOL], DAYS[0], DAYS[1], instance, settings).success
        yield settings, instance


def test_signal_assets_sit_below_the_candles() -> None:
    graph = build_defs().resolve_asset_graph()
    assert graph.get(indicator_key(Timeframe.H1)).parent_keys == {dg.AssetKey("ohlcv_1h")}
    assert graph.get(indicator_key(Timeframe.D1)).parent_keys == {dg.AssetKey("ohlcv_1d")}
    assert graph.get(MARKET_REGIME).parent_keys == {dg.AssetKey("ohlcv_1h")}
    assert graph.get(GRID_LEVELS).parent_keys == {dg.AssetKey("ohlcv_1m"),
                                                  dg.AssetKey("ohlcv_1h")}


def test_a_day_of_signals_is_stored_checked_and_explained(
        filled: tuple[Settings, dg.DagsterInstance]) -> None:
    settings, instance = filled
    job = build_defs(settings).resolve_job_def(SIGNALS_JOB)
    result = job.execute_in_process(instance=instance, partition_key=KEY)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {check_name(Timeframe.H1): True, check_name(Timeframe.D1): True}

    hours = CandleStore(settings.data_dir).load_frame(SYMBOL, Timeframe.H1, DAYS[0], DAYS[1],
                                                      as_float=True)
    stored = load_table(indicators_path(settings.data_dir, SYMBOL, Timeframe.H1, DAYS[1]))
    assert stored.index.equals(hours.index[24:])
    close = hours["close"].to_numpy()
    assert_matches(stored["rsi"], talib.RSI(close, 14)[24:])
    assert_matches(stored["macd"], talib.MACD(close, 12, 26, 9)[0][24:],
                   scale=float(np.median(close)))
    daily = load_table(indicators_path(settings.data_dir, SYMBOL, Timeframe.D1, DAYS[1]))
    assert len(daily) == 1
    assert daily.drop(columns="close").isna().all(axis=None)  # two days: all warm-up

    (grid_event,) = result.asset_materializations_for_node("grid_levels")
    grid = grid_event.metadata
    lower, upper = grid["lower"].value, grid["upper"].value  # type: ignore[attr-defined]
    assert hours["low"].min() <= lower < upper <= hours["high"].max()
    assert "value area" in grid["reasoning"].value  # type: ignore[attr-defined]
    saved = json.loads(Path(grid_path(settings.data_dir, SYMBOL, DAYS[1])).read_text())
    assert saved["levels"] == grid["levels"].value  # type: ignore[attr-defined]
    (regime_event,) = result.asset_materializations_for_node("market_regime")
    regime = regime_event.metadata
    assert regime["regime_at_close"].value in {  # type: ignore[attr-defined]
        "trending", "ranging", "volatile", "warming_up"}


def test_the_check_fails_when_stored_indicators_went_stale(
        filled: tuple[Settings, dg.DagsterInstance]) -> None:
    settings, instance = filled
    defs = build_defs(settings)
    job = defs.resolve_job_def(SIGNALS_JOB)
    assert job.execute_in_process(instance=instance, partition_key=KEY).success
    path = indicators_path(settings.data_dir, SYMBOL, Timeframe.H1, DAYS[1])
    table = load_table(path)
    table.loc[table.index[-1], "atr"] *= 1.001
    store_table(path, table)
    check = dg.AssetCheckKey(indicator_key(Timeframe.H1), check_name(Timeframe.H1))
    rerun = job.get_subset(asset_check_selection={check}, asset_selection=set())
    result = rerun.execute_in_process(instance=instance, partition_key=KEY)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "atr" in evaluation.metadata["worst"].value  # type: ignore[attr-defined]
