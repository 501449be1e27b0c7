"""Regime, support/resistance and the grid suggestion on shaped and real candles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helios_pipeline.signals.grid import GridRules, suggest_grid
from helios_pipeline.signals.levels import find_levels
from helios_pipeline.signals.regime import (
    RANGING,
    TRENDING,
    VOLATILE,
    WARMING_UP,
    RegimeRules,
    classify_regime,
)
from helios_pipeline_tests.unit.signals_reference import real_candles


def shaped(close: np.ndarray, spread: float = 0.2, volume: float = 1.0) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=close.size, freq="1min", tz="UTC")
    return pd.DataFrame({"high": close + spread, "low": close - spread, "close": close,
                         "volume": np.full(close.size, volume)}, index=index)


def test_a_steady_climb_is_trending_and_an_oscillation_is_ranging() -> None:
    steps = np.arange(400, dtype=np.float64)
    climb = classify_regime(shaped(100.0 + 0.5 * steps + np.sin(steps)))
    assert (climb["regime"].iloc[150:] == TRENDING).mean() > 0.9
    wave = classify_regime(shaped(100.0 + 5.0 * np.sin(steps / 2.0)))
    assert (wave["regime"].iloc[150:] == RANGING).mean() > 0.9


def test_a_burst_of_wide_swings_is_volatile() -> None:
    steps = np.arange(400, dtype=np.float64)
    close = 100.0 + np.sin(steps / 3.0)
    close[300:] += 8.0 * np.sin(steps[300:] / 1.5)
    regime = classify_regime(shaped(close))["regime"]
    assert (regime.iloc[305:330] == VOLATILE).any()
    assert (regime.iloc[150:295] != VOLATILE).all()


def test_every_call_follows_the_stated_rules_from_its_evidence() -> None:
    rules = RegimeRules()
    table = classify_regime(real_candles("BTCUSDT-1m-2020-03-12.csv"), rules)
    assert (table["regime"].iloc[:2 * rules.adx_period - 1] == WARMING_UP).all()
    ready = table[table["regime"] != WARMING_UP]
    expected = np.where(ready["width_ratio"] >= rules.volatile_ratio, VOLATILE,
                        np.where(ready["adx"] >= rules.trend_adx, TRENDING, RANGING))
    assert (ready["regime"].to_numpy() == expected).all()
    assert set(ready["regime"]) == {TRENDING, RANGING, VOLATILE}


def test_levels_are_found_where_the_price_keeps_turning() -> None:
    steps = np.arange(600, dtype=np.float64)
    close = 105.0 + 5.0 * np.sin(steps / 10.0)
    candles = shaped(close, spread=0.1)
    candles.loc[candles.index[400:], "volume"] = 3.0  # the later turns carry more volume
    levels = find_levels(candles)
    support = max((lv for lv in levels if lv.kind == "support"), key=lambda lv: lv.strength)
    resistance = max((lv for lv in levels if lv.kind == "resistance"),
                     key=lambda lv: lv.strength)
    assert support.price == pytest.approx(99.9, abs=0.15)
    assert resistance.price == pytest.approx(110.1, abs=0.15)
    assert support.touches >= 9
    assert support.strength == pytest.approx(1.0, abs=0.1)
    troughs = candles.index[(np.abs(close - close.min()) < 0.01)]
    assert support.last_touch == troughs[troughs <= candles.index[-4]][-1]


def test_grid_on_a_real_month_is_consistent_and_explained() -> None:
    candles = real_candles("BTCUSDT-1m-2019-05.csv.xz")
    rules = GridRules()
    grid = suggest_grid(candles, rules)
    prices = np.asarray(grid.prices)
    assert grid.lower == prices[0] < prices[-1] == pytest.approx(grid.upper)
    assert rules.min_levels <= grid.levels == prices.size - 1 <= rules.max_levels
    assert candles["low"].min() <= grid.lower
    assert grid.upper <= candles["high"].max()
    if grid.spacing == "geometric":
        assert np.allclose(prices[1:] / prices[:-1], prices[1] / prices[0])
    else:
        assert np.allclose(np.diff(prices), grid.step)
    assert grid.step >= rules.min_step_pct * grid.lower * 0.999
    assert "value area" in grid.reasoning[0]
    metadata = grid.as_metadata()
    assert metadata["levels"] == grid.levels
    assert isinstance(metadata["reasoning"], str)


def test_narrow_range_gets_arithmetic_spacing_with_at_least_the_minimum_levels() -> None:
    steps = np.arange(3000, dtype=np.float64)
    candles = shaped(1000.0 + 3.0 * np.sin(steps / 30.0), spread=0.5)
    grid = suggest_grid(candles)
    assert grid.spacing == "arithmetic"
    assert grid.levels >= GridRules().min_levels
    assert np.allclose(np.diff(grid.prices), grid.step)
