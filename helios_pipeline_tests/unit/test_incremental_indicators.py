"""Incremental indicators, fed one real candle at a time, against TA-Lib and the batch forms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import talib

from helios_pipeline.signals.directional import ADX
from helios_pipeline.signals.frame import COLUMNS, IndicatorSet, indicator_frame, is_warm
from helios_pipeline.signals.incremental import ATR, EMA, MACD, RSI, SMA, Bollinger
from helios_pipeline_tests.unit.signals_reference import REAL_FILES, assert_matches, real_candles


class Candle(NamedTuple):
    timestamp: datetime
    high: Decimal
    low: Decimal
    close: Decimal


def as_candles(frame: pd.DataFrame) -> list[Candle]:
    return [Candle(stamp.to_pydatetime(), Decimal(repr(high)), Decimal(repr(low)),
                   Decimal(repr(close)))
            for stamp, high, low, close in zip(frame.index, frame["high"], frame["low"],
                                               frame["close"], strict=True)]


@pytest.fixture(scope="module", params=REAL_FILES)
def candles(request: pytest.FixtureRequest) -> pd.DataFrame:
    return real_candles(request.param)


def test_every_incremental_indicator_matches_talib(candles: pd.DataFrame) -> None:
    high, low, close = (candles[name].to_numpy() for name in ("high", "low", "close"))
    indicators = IndicatorSet()
    rows = pd.DataFrame([indicators.update(candle) for candle in as_candles(candles)])
    assert_matches(rows["rsi"], talib.RSI(close, 14))
    for column, reference in zip(("macd", "macd_signal", "macd_hist"),
                                 talib.MACD(close, 12, 26, 9), strict=True):
        assert_matches(rows[column], reference, scale=float(np.median(close)))
    for column, reference in zip(("bb_upper", "bb_middle", "bb_lower"),
                                 talib.BBANDS(close, 20, 2.0, 2.0, 0), strict=True):
        assert_matches(rows[column], reference)
    assert_matches(rows["atr"], talib.ATR(high, low, close, 14))
    assert_matches(rows["adx"], talib.ADX(high, low, close, 14))


def test_incremental_equals_batch_on_the_same_series(candles: pd.DataFrame) -> None:
    batch = indicator_frame(candles)
    indicators = IndicatorSet()
    rows = pd.DataFrame([indicators.update(candle) for candle in as_candles(candles)])
    for column in COLUMNS:
        assert_matches(rows[column], batch[column], scale=float(candles["close"].median()))
    assert is_warm(rows.iloc[-1].to_dict())
    assert not is_warm(rows.iloc[0].to_dict())


def test_single_indicators_with_other_periods(candles: pd.DataFrame) -> None:
    close = candles["close"].to_numpy()
    high, low = candles["high"].to_numpy(), candles["low"].to_numpy()
    checks = [(SMA(7), talib.SMA(close, 7)), (EMA(50), talib.EMA(close, 50)),
              (RSI(5), talib.RSI(close, 5))]
    for indicator, reference in checks:
        assert_matches([indicator.update(value) for value in close], reference)
    bands = Bollinger(10, 1.0)
    assert_matches([bands.update(value).lower for value in close],
                   talib.BBANDS(close, 10, 1.0, 1.0, 0)[2])
    line = MACD(5, 35, 5)
    assert_matches([line.update(value).signal for value in close],
                   talib.MACD(close, 5, 35, 5)[1], scale=float(np.median(close)))
    candles_ = as_candles(candles)
    for period in (1, 7):
        ranges = ATR(period)
        assert_matches([ranges.update(c) for c in candles_], talib.ATR(high, low, close, period))
    trend = ADX(5)
    assert_matches([trend.update(c) for c in candles_], talib.ADX(high, low, close, 5))


def test_out_of_order_and_nan_candles_are_refused() -> None:
    stamp = datetime.fromisoformat("2024-01-01T00:00:00+00:00")
    first = Candle(stamp, Decimal(2), Decimal(1), Decimal("1.5"))
    ranges = ATR(3)
    ranges.update(first)
    with pytest.raises(ValueError, match="is not after the previous candle"):
        ranges.update(first)
    later = first._replace(timestamp=stamp.replace(minute=1), close=Decimal("NaN"))
    with pytest.raises(ValueError, match=r"candle.close=nan at row 1"):
        ranges.update(later)
    with pytest.raises(ValueError, match="a bare number has no high"):
        ADX(3).update(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^period=0"):
        RSI(0)
