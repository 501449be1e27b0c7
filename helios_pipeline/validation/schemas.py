"""pandera models that carry the validation rules, one check per rule, named after the rule.

:class:`CandleFrame` and :class:`TickerFrame` describe the *derived* frames of
``validation.frames`` (:func:`~helios_pipeline.validation.frames.derive_candle_frame`,
:func:`~helios_pipeline.validation.frames.derive_ticker_frame`): the input columns as float64 plus
the columns the statistical rules are decided on (jump ratios, absurd-price limit, volume z-score,
time advance...). Every check is element-wise (a boolean per row), so pandera's ``failure_cases``
give the row of each failure; the checks ignore nothing (``ignore_na=False``) and, like the other
engines, a comparison with NaN is false.

Soft rules are checks too; :func:`candle_schema_rules` and :func:`ticker_schema_rules` run a model
lazily and return each row's failing rule names, which ``validation.rules.HARD_RULES`` splits into
hard and soft. Thresholds other than the defaults get a subclass from :func:`candle_frame_model` /
:func:`ticker_frame_model` (cached per thresholds).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.validation.frames import derive_candle_frame, derive_ticker_frame
from helios_pipeline.validation.rules import ValidationThresholds, ordered


class _Rules(pa.DataFrameModel):
    """Shared configuration: extra columns allowed, no coercion."""

    _thresholds = ValidationThresholds()

    class Config:
        """pandera options."""

        strict = False
        coerce = False


class CandleFrame(_Rules):
    """A derived candle frame; the checks are the candle rules of ``validation.rules``."""

    timestamp: Series[int]
    open: Series[float] = pa.Field(nullable=True)
    high: Series[float] = pa.Field(nullable=True)
    low: Series[float] = pa.Field(nullable=True)
    close: Series[float] = pa.Field(nullable=True)
    volume: Series[float] = pa.Field(nullable=True)
    taker_buy_volume: Series[float] = pa.Field(nullable=True)
    taker_buy_bad: Series[bool]
    grid_offset_ms: Series[int]
    ts_advance_ms: Series[float] = pa.Field(nullable=True)
    future_excess_ms: Series[int]
    max_price: Series[float] = pa.Field(nullable=True)
    min_price: Series[float] = pa.Field(nullable=True)
    jump_ratio_contiguous: Series[float] = pa.Field(nullable=True)
    jump_ratio_after_gap: Series[float] = pa.Field(nullable=True)
    absurd_limit: Series[float] = pa.Field(nullable=True)
    volume_z: Series[float] = pa.Field(nullable=True)
    zero_volume_flat: Series[bool]

    @pa.dataframe_check(ignore_na=False)
    def not_a_number(cls, df: pd.DataFrame) -> pd.Series[bool]:
        """Prices and volume are finite; a given taker-buy volume is a number."""
        return _finite(df, ["open", "high", "low", "close", "volume"]) & ~df["taker_buy_bad"]

    @pa.check("min_price", ignore_na=False)
    def non_positive_price(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Every price is above zero."""
        return ~(s <= 0)

    @pa.dataframe_check(ignore_na=False)
    def absurd_price(cls, df: pd.DataFrame) -> pd.Series[bool]:
        """No price reaches the absurd-price limit."""
        return ~(df["max_price"] >= df["absurd_limit"])

    @pa.check("jump_ratio_contiguous", ignore_na=False)
    def price_jump(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """No jump above ``max_jump`` from the reference close of the previous candles."""
        return ~(s > cls._thresholds.max_jump)

    @pa.dataframe_check(ignore_na=False)
    def ohlc_inconsistent(cls, df: pd.DataFrame) -> pd.Series[bool]:
        """High and low bound open and close, high is not below low."""
        o, h, lo, c = (df[n] for n in ("open", "high", "low", "close"))
        return ~((h < o) | (h < c) | (lo > o) | (lo > c) | (h < lo))

    @pa.dataframe_check(ignore_na=False)
    def negative_volume(cls, df: pd.DataFrame) -> pd.Series[bool]:
        """Volumes are not negative; taker-buy volume is at most the volume."""
        v, tb = df["volume"], df["taker_buy_volume"]
        return ~((v < 0) | (tb < 0) | (tb > v))

    @pa.check("grid_offset_ms", ignore_na=False)
    def misaligned_timestamp(cls, s: pd.Series[int]) -> pd.Series[bool]:
        """The open time is on the timeframe's grid."""
        return s == 0

    @pa.check("ts_advance_ms", ignore_na=False)
    def duplicate_timestamp(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """The open time differs from the latest accepted-order time."""
        return ~(s == 0)

    @pa.check("ts_advance_ms", ignore_na=False)
    def out_of_order_timestamp(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """The open time is not before the latest accepted-order time."""
        return ~(s < 0)

    @pa.check("future_excess_ms", ignore_na=False)
    def future_timestamp(cls, s: pd.Series[int]) -> pd.Series[bool]:
        """The candle has closed (within the clock tolerance)."""
        return ~(s > 0)

    @pa.check("jump_ratio_after_gap", ignore_na=False)
    def price_jump_after_gap(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Soft: no jump above ``max_jump`` right after a gap."""
        return ~(s > cls._thresholds.max_jump)

    @pa.check("volume_z", ignore_na=False)
    def volume_outlier(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Soft: the volume's modified z-score is at most ``volume_z``."""
        return ~(s > cls._thresholds.volume_z)

    @pa.check("zero_volume_flat", ignore_na=False)
    def flat_fill(cls, s: pd.Series[bool]) -> pd.Series[bool]:
        """Soft: not a zero-volume candle flat at the previous close without a trade count 0."""
        return ~s


class TickerFrame(_Rules):
    """A derived ticker frame; the checks are the tick rules of ``validation.rules``."""

    timestamp: Series[int]
    received_at: Series[int]
    price: Series[float] = pa.Field(nullable=True)
    volume: Series[float] = pa.Field(nullable=True)
    bid: Series[float] = pa.Field(nullable=True)
    ask: Series[float] = pa.Field(nullable=True)
    ts_advance_ms: Series[float] = pa.Field(nullable=True)
    future_excess_ms: Series[int]
    staleness_ms: Series[int]
    max_price: Series[float] = pa.Field(nullable=True)
    min_price: Series[float] = pa.Field(nullable=True)
    jump_ratio_contiguous: Series[float] = pa.Field(nullable=True)
    jump_ratio_after_gap: Series[float] = pa.Field(nullable=True)
    absurd_limit: Series[float] = pa.Field(nullable=True)
    divergence: Series[float] = pa.Field(nullable=True)
    reference_confirms: Series[float]

    @pa.dataframe_check(ignore_na=False)
    def not_a_number(cls, df: pd.DataFrame) -> pd.Series[bool]:
        """Price, volume, bid and ask are finite."""
        return _finite(df, ["price", "volume", "bid", "ask"])

    @pa.check("min_price", ignore_na=False)
    def non_positive_price(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Price, bid and ask are above zero."""
        return ~(s <= 0)

    @pa.dataframe_check(ignore_na=False)
    def absurd_price(cls, df: pd.DataFrame) -> pd.Series[bool]:
        """No price reaches the absurd-price limit."""
        return ~(df["max_price"] >= df["absurd_limit"])

    @pa.check("jump_ratio_contiguous", ignore_na=False)
    def price_jump(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """No jump above ``max_jump`` from the reference price of the previous ticks."""
        return ~(s > cls._thresholds.max_jump)

    @pa.check("volume", ignore_na=False)
    def negative_volume(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """The volume is not negative."""
        return ~(s < 0)

    @pa.check("ts_advance_ms", ignore_na=False)
    def out_of_order_timestamp(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """The exchange time is not before the latest accepted one."""
        return ~(s < 0)

    @pa.check("future_excess_ms", ignore_na=False)
    def future_timestamp(cls, s: pd.Series[int]) -> pd.Series[bool]:
        """The exchange time is not after the receipt (within the clock tolerance)."""
        return ~(s > 0)

    @pa.check("jump_ratio_after_gap", ignore_na=False)
    def price_jump_after_gap(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Soft: no jump above ``max_jump`` right after a gap."""
        return ~(s > cls._thresholds.max_jump)

    @pa.check("staleness_ms", ignore_na=False)
    def stale(cls, s: pd.Series[int]) -> pd.Series[bool]:
        """Soft: the tick was received within ``stale_after_ms`` of its exchange time."""
        return ~(s > cls._thresholds.stale_after_ms)

    @pa.check("divergence", ignore_na=False)
    def cross_exchange_divergence(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Soft: the price is within ``max_divergence`` of the other venue's."""
        return ~(s > cls._thresholds.max_divergence)

    @pa.check("reference_confirms", ignore_na=False)
    def confirmed_move(cls, s: pd.Series[float]) -> pd.Series[bool]:
        """Soft: a price move the reference venue confirmed (kept, flagged)."""
        return ~(s > 0)


def _finite(df: pd.DataFrame, names: list[str]) -> pd.Series[bool]:
    return pd.Series(np.isfinite(df[names].to_numpy(dtype=np.float64)).all(axis=1),
                     index=df.index)


@cache
def candle_frame_model(thresholds: ValidationThresholds) -> type[CandleFrame]:
    """:class:`CandleFrame` checking with ``thresholds`` (the class itself for the defaults)."""
    if thresholds == ValidationThresholds():
        return CandleFrame
    return type("CandleFrame", (CandleFrame,), {"_thresholds": thresholds,
                                                 "__module__": __name__})


@cache
def ticker_frame_model(thresholds: ValidationThresholds) -> type[TickerFrame]:
    """:class:`TickerFrame` checking with ``thresholds`` (the class itself for the defaults)."""
    if thresholds == ValidationThresholds():
        return TickerFrame
    return type("TickerFrame", (TickerFrame,), {"_thresholds": thresholds,
                                                 "__module__": __name__})


def failing_rules(model: type[pa.DataFrameModel], derived: pd.DataFrame) -> list[tuple[str, ...]]:
    """Run ``model`` lazily over a derived frame; per row, the names of the failing checks.

    Raises:
        pandera.errors.SchemaErrors: A failure that is not a rule check on a row (a missing
            column or a wrong dtype): the derived frame is not what the model describes.
    """
    failing: list[set[str]] = [set() for _ in range(len(derived))]
    try:
        model.validate(derived, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        if cases["index"].isna().any():
            raise
        for check, row in zip(cases["check"], cases["index"], strict=True):
            failing[int(row)].add(str(check))
    return [ordered(names) for names in failing]


def candle_schema_rules(
    frame: pd.DataFrame,
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
) -> list[tuple[str, ...]]:
    """Failing rule names per row of a candle frame (input of ``frames.validate_candle_frame``)."""
    t = (thresholds or ValidationThresholds()).for_timeframe(timeframe)
    derived = derive_candle_frame(frame, timeframe, t, now_ms)
    return failing_rules(candle_frame_model(t), derived)


def ticker_schema_rules(
    frame: pd.DataFrame, thresholds: ValidationThresholds | None = None
) -> list[tuple[str, ...]]:
    """Failing rule names per row of a ticker frame (input of ``frames.validate_ticker_frame``)."""
    t = thresholds or ValidationThresholds()
    return failing_rules(ticker_frame_model(t), derive_ticker_frame(frame, t))
