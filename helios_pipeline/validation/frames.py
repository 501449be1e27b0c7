"""The validation rules vectorised with numpy over candle and ticker DataFrames.

:func:`validate_candle_frame` takes a frame in storage column names (``open`` ... ``volume``,
optional ``taker_buy_volume``; the open time as a ``timestamp`` column or index, ms epoch ints or
tz-aware datetimes) in the order the rows were received, and returns per-row verdict columns
``hard_rules``, ``soft_rules`` (tuples of rule names) and ``validation_score``. The verdicts equal
those of :class:`~helios_pipeline.validation.scalar.CandleValidator` fed the same rows, bit for bit:
the same float64 operations in the same order, and medians that are exact selections.

:func:`derive_candle_frame` exposes the derived columns the statistical rules are decided on
(reference close, jump ratios, absurd-price limit, volume z-score, time advance, ...); the pandera
models (``validation.schemas``) and Great Expectations suites (``validation.expectations``) carry
the rules as checks on those columns. Ticker frames (``timestamp``, ``price``, ``volume``, ``bid``,
``ask``, ``received_at``, optional ``reference_price``) have the same pair of functions.

Reading the columns is ``validation.frame_inputs``; the rolling medians, ``validation.medians``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from helios_pipeline.domain.columns import (
    ASK,
    BID,
    CLOSE,
    HIGH,
    LOW,
    OPEN,
    PRICE,
    RECEIVED_AT,
    TAKER_BUY_VOLUME,
    TIMESTAMP,
    TRADES,
    VALIDATION_SCORE,
    VOLUME,
)
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.validation.frame_inputs import (
    Bools,
    Floats,
    FrameInputError,
    Ints,
    float_column,
    frame_timestamps,
    optional_column,
)
from helios_pipeline.validation.medians import prior_medians
from helios_pipeline.validation.rules import (
    CANDLE_RULES,
    HARD_RULES,
    MAD_SCALE,
    TICK_RULES,
    Rule,
    ValidationThresholds,
)

Derived = dict[str, npt.NDArray[Any]]

HARD_RULES_COLUMN = "hard_rules"
SOFT_RULES_COLUMN = "soft_rules"
REFERENCE_PRICE = "reference_price"
# Derived columns, shared by the pandera models and the Great Expectations suites.
GRID_OFFSET = "grid_offset_ms"
TS_ADVANCE = "ts_advance_ms"
FUTURE_EXCESS = "future_excess_ms"
STALENESS = "staleness_ms"
TAKER_BUY_BAD = "taker_buy_bad"
MAX_PRICE = "max_price"
MIN_PRICE = "min_price"
REFERENCE = "reference_close"
JUMP_CONTIGUOUS = "jump_ratio_contiguous"
JUMP_AFTER_GAP = "jump_ratio_after_gap"
AVERAGE = "average_close"
ABSURD_LIMIT = "absurd_limit"
VOLUME_MEDIAN = "volume_median"
VOLUME_MAD = "volume_mad"
VOLUME_Z = "volume_z"
DIVERGENCE = "divergence"
CONFIRMED = "reference_confirms"
PREVIOUS_CLOSE = "previous_close"
FLAT_FILL = "zero_volume_flat"

CANDLE_PRICES = (OPEN, HIGH, LOW, CLOSE)
TICK_PRICES = (PRICE, BID, ASK)
# Timestamps beyond year 9999 are not times; refusing them also keeps int64 arithmetic exact.


# -- candles --------------------------------------------------------------------------------------


def derive_candles(
    frame: pd.DataFrame, timeframe: Timeframe, thresholds: ValidationThresholds, now_ms: int
) -> Derived:
    """Every input and derived column the candle rules are decided on, as numpy arrays.

    Raises:
        FrameInputError: A required column is missing or the timestamps are unusable.
    """
    t = thresholds.for_timeframe(timeframe)
    out: Derived = {TIMESTAMP: frame_timestamps(frame)}
    for name in (*CANDLE_PRICES, VOLUME):
        out[name] = float_column(frame, name)
    taker, present = optional_column(frame, TAKER_BUY_VOLUME)
    out[TAKER_BUY_VOLUME] = taker
    out[TAKER_BUY_BAD] = present & ~np.isfinite(taker)
    ts = out[TIMESTAMP]
    out[GRID_OFFSET] = ts % timeframe.ms
    out[FUTURE_EXCESS] = ts + timeframe.ms - (now_ms + t.clock_tolerance_ms)
    out[TS_ADVANCE] = _advance(ts, (out[GRID_OFFSET] == 0) & (out[FUTURE_EXCESS] <= 0))
    prices = [out[name] for name in CANDLE_PRICES]
    close_count = _derive_prices(out, prices, out[CLOSE], t)
    _derive_gap(out, ts, out[CLOSE], close_count, lambda step: step == timeframe.ms)
    _derive_flat_fill(out, frame, close_count)
    count, median, mad = prior_medians(out[VOLUME], t.volume_window, with_mad=True)
    enough = count >= t.min_history
    out[VOLUME_MEDIAN] = np.where(enough, median, np.nan)
    out[VOLUME_MAD] = np.where(enough, mad, np.nan)
    with np.errstate(all="ignore"):
        z = MAD_SCALE * (out[VOLUME] - out[VOLUME_MEDIAN]) / out[VOLUME_MAD]
    out[VOLUME_Z] = np.where(out[VOLUME_MAD] > 0, z, np.nan)
    return out


def _advance(ts: Ints, eligible: Bools) -> Floats:
    """``ts`` minus the latest eligible time before it (NaN when there is none), as float64.

    Only aligned, non-future rows are eligible to set the mark, so one bad time never makes the
    rows after it look out of order (``rules``: duplicate and out-of-order timestamps).
    """
    lowest = np.iinfo(np.int64).min
    marks = np.maximum.accumulate(np.where(eligible, ts, lowest))
    previous = np.concatenate(([lowest], marks[:-1]))
    has_mark = (np.cumsum(eligible) - eligible) > 0
    return np.where(has_mark, (ts - previous).astype(np.float64), np.nan)


def _derive_prices(
    out: Derived, prices: Sequence[Floats], reference_of: Floats, t: ValidationThresholds
) -> Ints:
    """Max/min price, jump ratio against the reference and the absurd-price limit.

    Returns:
        Per row, how many earlier reference values (closes, tick prices) were numbers.
    """
    with np.errstate(all="ignore"):
        out[MAX_PRICE] = np.fmax.reduce(np.stack(prices), axis=0)
        out[MIN_PRICE] = np.fmin.reduce(np.stack(prices), axis=0)
        count, reference, _ = prior_medians(reference_of, t.reference_window, with_mad=False)
        reference = np.where(reference > 0, reference, np.nan)
        ratios = [np.abs(p - reference) / reference for p in prices]
        out[REFERENCE] = reference
        out["jump_ratio"] = np.fmax.reduce(np.stack(ratios), axis=0)
        avg_count, average, _ = prior_medians(reference_of, t.average_window, with_mad=False)
        average = np.where((avg_count >= t.min_history) & (average > 0), average, np.nan)
        out[AVERAGE] = average
        out[ABSURD_LIMIT] = t.max_price_multiple * average
    return count


def _derive_flat_fill(out: Derived, frame: pd.DataFrame, close_count: Ints) -> None:
    """Previous close and ``flat_fill``: zero volume, four prices at it, no trade count of 0."""
    close = out[CLOSE]
    rows = np.flatnonzero(np.isfinite(close))
    latest = rows[np.maximum(close_count - 1, 0)] if rows.size else np.zeros(len(close), int)
    previous = np.where(close_count > 0, close[latest] if rows.size else np.nan, np.nan)
    out[PREVIOUS_CLOSE] = previous
    trades, present = optional_column(frame, TRADES)
    flat = np.logical_and.reduce([out[name] == previous for name in CANDLE_PRICES])
    out[FLAT_FILL] = flat & (out[VOLUME] == 0) & ~(present & (trades == 0))


def _derive_gap(
    out: Derived,
    ts: Ints,
    reference_of: Floats,
    count: Ints,
    contiguous_step: Callable[[Ints], Bools],
) -> None:
    """Split the jump ratio by whether the latest reference value came right before the row."""
    rows = np.flatnonzero(np.isfinite(reference_of))
    latest = rows[np.maximum(count - 1, 0)] if rows.size else np.zeros(len(ts), dtype=np.int64)
    contiguous = (count > 0) & contiguous_step(ts - ts[latest])
    ratio = out.pop("jump_ratio")
    out[JUMP_CONTIGUOUS] = np.where(contiguous, ratio, np.nan)
    out[JUMP_AFTER_GAP] = np.where(contiguous, np.nan, ratio)


def candle_rule_masks(derived: Mapping[str, npt.NDArray[Any]],
                      thresholds: ValidationThresholds) -> dict[Rule, Bools]:
    """Per candle rule, the rows that break it, decided on :func:`derive_candles` columns."""
    d, t = derived, thresholds
    o, h, lo, c, v, tb = (d[n] for n in (*CANDLE_PRICES, VOLUME, TAKER_BUY_VOLUME))
    numbers = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    with np.errstate(invalid="ignore"):
        masks = {
            Rule.NOT_A_NUMBER: ~numbers | d[TAKER_BUY_BAD],
            Rule.NON_POSITIVE_PRICE: d[MIN_PRICE] <= 0,
            Rule.ABSURD_PRICE: d[MAX_PRICE] >= d[ABSURD_LIMIT],
            Rule.PRICE_JUMP: d[JUMP_CONTIGUOUS] > t.max_jump,
            Rule.OHLC_INCONSISTENT: (h < o) | (h < c) | (lo > o) | (lo > c) | (h < lo),
            Rule.NEGATIVE_VOLUME: (v < 0) | (tb < 0) | (tb > v),
            Rule.MISALIGNED_TIMESTAMP: d[GRID_OFFSET] != 0,
            Rule.DUPLICATE_TIMESTAMP: d[TS_ADVANCE] == 0,
            Rule.OUT_OF_ORDER_TIMESTAMP: d[TS_ADVANCE] < 0,
            Rule.FUTURE_TIMESTAMP: d[FUTURE_EXCESS] > 0,
            Rule.PRICE_JUMP_AFTER_GAP: d[JUMP_AFTER_GAP] > t.max_jump,
            Rule.VOLUME_OUTLIER: d[VOLUME_Z] > t.volume_z,
            Rule.FLAT_FILL: d[FLAT_FILL],
        }
    return {rule: masks[rule] for rule in CANDLE_RULES}


def derive_candle_frame(
    frame: pd.DataFrame,
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
) -> pd.DataFrame:
    """The derived columns as a DataFrame with a RangeIndex (row positions of ``frame``)."""
    t = (thresholds or ValidationThresholds()).for_timeframe(timeframe)
    return pd.DataFrame(derive_candles(frame, timeframe, t, _now(now_ms)))


def validate_candle_frame(
    frame: pd.DataFrame,
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
) -> pd.DataFrame:
    """Per-row verdicts of a candle frame, in the order its rows were received.

    Args:
        frame: Candles in storage column names; see the module docstring.
        timeframe: Candle length (grid and "closed" test).
        thresholds: Rule thresholds (defaults when omitted).
        now_ms: "Now" for ``future_timestamp``; the clock when omitted.

    Returns:
        ``hard_rules`` and ``soft_rules`` (tuples of rule names, :class:`Rule` order) and
        ``validation_score``, indexed like ``frame``.

    Raises:
        FrameInputError: A required column is missing or the timestamps are unusable.
    """
    t = (thresholds or ValidationThresholds()).for_timeframe(timeframe)
    masks = candle_rule_masks(derive_candles(frame, timeframe, t, _now(now_ms)), t)
    return verdict_frame(masks, frame.index, t.soft_penalty)


# -- tickers --------------------------------------------------------------------------------------


def derive_ticks(frame: pd.DataFrame, thresholds: ValidationThresholds) -> Derived:
    """Every input and derived column the tick rules are decided on, as numpy arrays.

    Raises:
        FrameInputError: A required column is missing or the timestamps are unusable.
    """
    t = thresholds
    out: Derived = {TIMESTAMP: frame_timestamps(frame)}
    if RECEIVED_AT not in frame.columns:
        raise FrameInputError(f"The ticker frame has no {RECEIVED_AT!r} column (receipt, ms).")
    out[RECEIVED_AT] = received = np.asarray(frame[RECEIVED_AT], dtype=np.int64)
    for name in (*TICK_PRICES, VOLUME):
        out[name] = float_column(frame, name)
    ts = out[TIMESTAMP]
    out[FUTURE_EXCESS] = ts - (received + t.clock_tolerance_ms)
    out[TS_ADVANCE] = _advance(ts, out[FUTURE_EXCESS] <= 0)
    out[STALENESS] = received - ts
    count = _derive_prices(out, [out[n] for n in TICK_PRICES], out[PRICE], t)
    _derive_gap(out, ts, out[PRICE], count,
                lambda step: (step >= 0) & (step <= t.tick_gap_ms))
    reference, present = optional_column(frame, REFERENCE_PRICE)
    out[DIVERGENCE] = np.where(present, _divergence(out[PRICE], reference), np.nan)
    _confirm_moves(out, t)
    return out


def _confirm_moves(d: Derived, t: ValidationThresholds) -> None:
    """Ticks that broke price rules only, at the reference venue's price: real moves.

    For those rows the price-rule columns are neutralised (no jump, no absurd limit) and
    ``reference_confirms`` is 1, so every engine reading the derived frame gives the soft flag
    ``confirmed_move`` instead of quarantine, as the scalar validator does.
    """
    with np.errstate(invalid="ignore"):
        numbers = np.logical_and.reduce([np.isfinite(d[n]) for n in (*TICK_PRICES, VOLUME)])
        other_hard = (~numbers | (d[MIN_PRICE] <= 0) | (d[VOLUME] < 0) | (d[TS_ADVANCE] < 0)
                      | (d[FUTURE_EXCESS] > 0))
        moved = (d[JUMP_CONTIGUOUS] > t.max_jump) | (d[MAX_PRICE] >= d[ABSURD_LIMIT])
        agreed = d[DIVERGENCE] <= t.max_divergence  # NaN (no reference) is never agreed
    confirmed = moved & agreed & ~other_hard
    d[JUMP_CONTIGUOUS] = np.where(confirmed, 0.0, d[JUMP_CONTIGUOUS])
    d[ABSURD_LIMIT] = np.where(confirmed, np.inf, d[ABSURD_LIMIT])
    d[CONFIRMED] = confirmed.astype(np.float64)


def _divergence(a: Floats, b: Floats) -> Floats:
    """Vectorised :func:`~helios_pipeline.validation.rules.divergence`."""
    with np.errstate(all="ignore"):
        low = np.minimum(a, b)
        usable = np.isfinite(a) & np.isfinite(b) & (low > 0)
        return np.where(usable, np.abs(a - b) / low, np.inf)


def tick_rule_masks(derived: Mapping[str, npt.NDArray[Any]],
                    thresholds: ValidationThresholds) -> dict[Rule, Bools]:
    """Per tick rule, the rows that break it, decided on :func:`derive_ticks` columns."""
    d, t = derived, thresholds
    numbers = np.logical_and.reduce([np.isfinite(d[n]) for n in (*TICK_PRICES, VOLUME)])
    with np.errstate(invalid="ignore"):
        masks = {
            Rule.NOT_A_NUMBER: ~numbers,
            Rule.NON_POSITIVE_PRICE: d[MIN_PRICE] <= 0,
            Rule.ABSURD_PRICE: d[MAX_PRICE] >= d[ABSURD_LIMIT],
            Rule.PRICE_JUMP: d[JUMP_CONTIGUOUS] > t.max_jump,
            Rule.NEGATIVE_VOLUME: d[VOLUME] < 0,
            Rule.OUT_OF_ORDER_TIMESTAMP: d[TS_ADVANCE] < 0,
            Rule.FUTURE_TIMESTAMP: d[FUTURE_EXCESS] > 0,
            Rule.PRICE_JUMP_AFTER_GAP: d[JUMP_AFTER_GAP] > t.max_jump,
            Rule.STALE: d[STALENESS] > t.stale_after_ms,
            Rule.CROSS_EXCHANGE_DIVERGENCE: d[DIVERGENCE] > t.max_divergence,
            Rule.CONFIRMED_MOVE: d[CONFIRMED] > 0,
        }
    return {rule: masks[rule] for rule in TICK_RULES}


def derive_ticker_frame(
    frame: pd.DataFrame, thresholds: ValidationThresholds | None = None
) -> pd.DataFrame:
    """The derived tick columns as a DataFrame with a RangeIndex (row positions of ``frame``)."""
    return pd.DataFrame(derive_ticks(frame, thresholds or ValidationThresholds()))


def validate_ticker_frame(
    frame: pd.DataFrame, thresholds: ValidationThresholds | None = None
) -> pd.DataFrame:
    """Per-row verdicts of a ticker frame, rows in the order received.

    The result has the columns of :func:`validate_candle_frame`'s.

    Raises:
        FrameInputError: A required column is missing or the timestamps are unusable.
    """
    t = thresholds or ValidationThresholds()
    masks = tick_rule_masks(derive_ticks(frame, t), t)
    return verdict_frame(masks, frame.index, t.soft_penalty)


# -- verdict columns ------------------------------------------------------------------------------


def verdict_frame(masks: Mapping[Rule, Bools], index: pd.Index, penalty: float) -> pd.DataFrame:
    """``hard_rules``, ``soft_rules`` and ``validation_score`` columns from per-rule masks."""
    rules = list(masks)
    codes = np.zeros(len(index), dtype=np.int64)
    soft_count = np.zeros(len(index), dtype=np.int64)
    hard_bits = 0
    for bit, rule in enumerate(rules):
        codes |= masks[rule].astype(np.int64) << bit
        if rule in HARD_RULES:
            hard_bits |= 1 << bit
        else:
            soft_count += masks[rule]
    hard = codes & hard_bits
    score = np.where(hard != 0, 0.0, np.maximum(0.0, 1.0 - penalty * soft_count))
    return pd.DataFrame(
        {
            HARD_RULES_COLUMN: _names(hard, rules),
            SOFT_RULES_COLUMN: _names(codes & ~hard_bits, rules),
            VALIDATION_SCORE: score,
        },
        index=index,
    )


def _names(codes: Ints, rules: Sequence[Rule]) -> npt.NDArray[np.object_]:
    """Tuple of rule names per row, decoded once per distinct code."""
    if not codes.size:
        return np.empty(0, dtype=object)
    table = np.empty(int(codes.max()) + 1, dtype=object)
    for code in np.flatnonzero(np.bincount(codes)).tolist():
        table[code] = tuple(str(r) for bit, r in enumerate(rules) if code >> bit & 1)
    return table[codes]


def _now(now_ms: int | None) -> int:
    if now_ms is not None:
        return now_ms
    return time.time_ns() // 1_000_000
