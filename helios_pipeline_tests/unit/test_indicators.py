"""Batch indicators against TA-Lib on real Binance candles, and what they refuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from helios_pipeline.signals import indicators as ind
from helios_pipeline_tests.unit.signals_reference import REAL_FILES, assert_matches, real_candles


@pytest.fixture(scope="module", params=REAL_FILES)
def candles(request: pytest.FixtureRequest) -> pd.DataFrame:
    return real_candles(request.param)


def test_moving_averages_match_talib(candles: pd.DataFrame) -> None:
    close = candles["close"]
    for period in (1, 5, 20, 200):
        assert_matches(ind.sma(close, period), talib.SMA(close.to_numpy(), period))
        assert_matches(ind.ema(close, period), talib.EMA(close.to_numpy(), period))


def test_rsi_matches_talib(candles: pd.DataFrame) -> None:
    close = candles["close"].to_numpy()
    for period in (2, 14, 30):
        assert_matches(ind.rsi(close, period), talib.RSI(close, period))


def test_macd_matches_talib(candles: pd.DataFrame) -> None:
    close = candles["close"].to_numpy()
    for fast, slow, signal in ((12, 26, 9), (5, 35, 5), (3, 10, 16)):
        ours = ind.macd(close, fast, slow, signal)
        theirs = talib.MACD(close, fast, slow, signal)
        for mine, reference in zip(ours, theirs, strict=True):
            assert_matches(mine, reference, scale=float(np.median(close)))


def test_bollinger_matches_talib(candles: pd.DataFrame) -> None:
    close = candles["close"].to_numpy()
    for period, k in ((20, 2.0), (5, 1.5), (50, 3.0)):
        ours = ind.bollinger(close, period, k)
        theirs = talib.BBANDS(close, period, k, k, 0)
        for mine, reference in zip(ours, theirs, strict=True):
            assert_matches(mine, reference)


def test_atr_and_adx_match_talib(candles: pd.DataFrame) -> None:
    high, low, close = (candles[name].to_numpy() for name in ("high", "low", "close"))
    for period in (1, 7, 14, 28):
        assert_matches(ind.atr(high, low, close, period), talib.ATR(high, low, close, period))
    for period in (2, 14, 28):
        assert_matches(ind.adx(high, low, close, period), talib.ADX(high, low, close, period))


def test_series_in_series_out_on_the_same_index(candles: pd.DataFrame) -> None:
    result = ind.atr(candles["high"], candles["low"], candles["close"])
    assert isinstance(result, pd.Series)
    assert result.index.equals(candles.index)
    upper, middle, lower = ind.bollinger(candles["close"])
    assert isinstance(upper, pd.Series)
    assert middle.index.equals(candles.index)
    assert (upper.dropna() >= lower.dropna()).all()
    assert isinstance(ind.rsi(candles["close"].to_numpy()), np.ndarray)


@pytest.mark.parametrize("period", [0, -3, 2.5, True])
def test_bad_periods_are_refused_by_name(period: object) -> None:
    close = np.linspace(1.0, 2.0, 50)
    with pytest.raises(ValueError, match=r"^period="):
        ind.rsi(close, period)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^slow="):
        ind.macd(close, 2, period)  # type: ignore[arg-type]


def test_fewer_rows_than_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match=r"close has 10 rows, fewer than period=14"):
        ind.rsi(np.linspace(1.0, 2.0, 10), 14)


def test_nan_prices_are_refused_with_their_place() -> None:
    close = pd.Series(np.linspace(1.0, 2.0, 30),
                      index=pd.date_range("2024-01-01", periods=30, freq="1min", tz="UTC"))
    close.iloc[7] = np.nan
    with pytest.raises(ValueError, match=r"close has a NaN .* row 7 .*2024-01-01 00:07"):
        ind.sma(close, 5)
    high = np.linspace(2.0, 3.0, 30)
    high[3] = np.inf
    with pytest.raises(ValueError, match=r"^high has a NaN or infinite value at row 3"):
        ind.atr(high, np.linspace(1.0, 2.0, 30), np.linspace(1.5, 2.5, 30))


def test_unsorted_and_duplicate_timestamps_are_refused() -> None:
    index = pd.date_range("2024-01-01", periods=30, freq="1min", tz="UTC")
    close = pd.Series(np.linspace(1.0, 2.0, 30), index=index)
    with pytest.raises(ValueError, match="not in ascending order"):
        ind.ema(close.iloc[::-1], 5)
    doubled = pd.Series(np.linspace(1.0, 2.0, 30), index=index.insert(5, index[4]).delete(30))
    with pytest.raises(ValueError, match="duplicate timestamps"):
        ind.ema(doubled, 5)


def test_mismatched_columns_are_refused() -> None:
    close = np.linspace(1.0, 2.0, 30)
    with pytest.raises(ValueError, match="low has 30 rows but high has 29"):
        ind.atr(close[:-1], close, close)
    with pytest.raises(ValueError, match="not a mix"):
        ind.atr(pd.Series(close), close, close)
    with pytest.raises(ValueError, match="fast=26, slow=12"):
        ind.macd(close, 26, 12)
    with pytest.raises(ValueError, match="k=-1"):
        ind.bollinger(close, 5, -1.0)
