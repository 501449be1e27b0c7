"""Generated series (gaps, flat prices, zero volume, huge and tiny prices): never inf, NaN only in
the warm-up, and the incremental forms agree with the batch forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_pipeline.signals.frame import COLUMNS, IndicatorParams, IndicatorSet, indicator_frame
from helios_pipeline_tests.unit.signals_reference import assert_matches

PARAMS = IndicatorParams(rsi=5, macd_fast=3, macd_slow=8, macd_signal=4, bb_period=6, atr=5,
                         adx=4)
# First row with a value, per column, for PARAMS (TA-Lib's lookbacks).
FIRST = {"rsi": 5, "macd": 10, "macd_signal": 10, "macd_hist": 10, "bb_upper": 5,
         "bb_middle": 5, "bb_lower": 5, "atr": 5, "adx": 7}


@st.composite
def candle_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Candles with gaps in time, flat runs, zero volume and prices from 1e-8 to 1e12."""
    rows = draw(st.integers(min_value=12, max_value=120))
    level = 10.0 ** draw(st.integers(min_value=-8, max_value=12))
    moves = draw(st.lists(st.sampled_from([0.0, 0.0, 0.001, -0.001, 0.02, -0.02, 0.3, -0.25]),
                          min_size=rows, max_size=rows))
    close = level * np.cumprod(1.0 + np.asarray(moves))
    spread = draw(st.lists(st.sampled_from([0.0, 0.0005, 0.01]), min_size=rows, max_size=rows))
    high = close * (1.0 + np.asarray(spread))
    low = close * (1.0 - np.asarray(spread))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 5, 600]), min_size=rows, max_size=rows))
    index = pd.DatetimeIndex(pd.Timestamp("2024-01-01", tz="UTC")
                             + pd.to_timedelta(np.cumsum(steps), unit="min"))
    volume = draw(st.lists(st.sampled_from([0.0, 0.5, 1e6]), min_size=rows, max_size=rows))
    return pd.DataFrame({"high": high, "low": low, "close": close, "volume": volume}, index=index)


@settings(max_examples=150, deadline=None)
@given(candle_frames())
def test_never_inf_and_nan_only_in_the_warm_up(candles: pd.DataFrame) -> None:
    result = indicator_frame(candles, PARAMS)
    values = result.to_numpy()
    assert not np.isinf(values).any()
    for column in COLUMNS:
        missing = result[column].isna().to_numpy()
        first = FIRST[column]
        assert missing[:first].all(), column
        assert not missing[first:].any(), column
    assert ((result["rsi"].dropna() >= 0) & (result["rsi"].dropna() <= 100)).all()
    assert ((result["adx"].dropna() >= 0) & (result["adx"].dropna() <= 100 + 1e-9)).all()
    assert (result["atr"].dropna() >= 0).all()


@settings(max_examples=100, deadline=None)
@given(candle_frames())
def test_incremental_agrees_with_batch(candles: pd.DataFrame) -> None:
    batch = indicator_frame(candles, PARAMS)
    indicators = IndicatorSet(PARAMS)
    rows = pd.DataFrame([indicators.update(candle)
                         for candle in candles.itertuples(index=False)])
    scale = float(candles["close"].abs().max())
    for column in COLUMNS:
        # Oscillators (0..100) are compared to their own scale; price-like values to the price.
        own = 100.0 if column in ("rsi", "adx") else scale
        assert_matches(rows[column], batch[column], scale=own)
