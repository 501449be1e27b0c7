"""The four engines (scalar, numpy frames, pandera, Great Expectations) agree on every row.

Hypothesis generates candle and tick sequences with spikes, crashes, absurd prices, gaps, broken
OHLC, zero/negative/huge volumes, duplicate, out-of-order, misaligned and future timestamps, and
non-numbers (None, NaN, inf, strings); every engine must give each row the same hard and soft rule
sets (and scalar and frames the same score).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.validation.expectations import (
    candle_expectation_rules,
    ticker_expectation_rules,
)
from helios_pipeline.validation.frames import validate_candle_frame, validate_ticker_frame
from helios_pipeline.validation.rules import HARD_RULES, Rule, ValidationThresholds, Verdict
from helios_pipeline.validation.scalar import CandleValidator, TickValidator
from helios_pipeline.validation.schemas import candle_schema_rules, ticker_schema_rules

T0 = 1_707_523_200_000
NOW = T0 + 1_000 * MINUTE_MS
TF = Timeframe.M1
DEFAULT = ValidationThresholds()
SMALL = ValidationThresholds(reference_window=3, average_window=7, volume_window=7,
                             min_history=3, max_jump=0.1, volume_z=2.0)
THRESHOLDS = st.sampled_from([DEFAULT, SMALL])
SPECIAL = st.sampled_from([None, float("nan"), Decimal("NaN"), float("inf"), -float("inf"),
                           "abc", "12.5", Decimal("-1"), Decimal("0"), Decimal("1E+30"), True])
STEPS = ["next"] * 12 + ["gap", "dup", "back", "misaligned", "future"]
KINDS = ["normal"] * 12 + ["spike", "crash", "absurd", "broken", "special", "zero_volume",
                           "negative_volume", "huge_volume", "taker_over", "no_taker",
                           "flat_fill", "quiet"]
FIELDS = ("open", "high", "low", "close", "volume", "taker_buy_volume", "trades")
ROW = st.tuples(st.sampled_from(STEPS), st.integers(-150, 150), st.sampled_from(KINDS),
                SPECIAL, st.sampled_from(FIELDS), st.integers(0, 10**6))


def candle_rows(steps: list[tuple[Any, ...]], start_cents: int) -> list[dict[str, Any]]:
    """Rows of raw values (Decimals mostly) from generated steps."""
    ts, price, rows, previous = T0, start_cents, [], Decimal(start_cents).scaleb(-2)
    for step, move_bp, kind, special, field, volume_milli in steps:
        ts = {"next": ts + MINUTE_MS, "gap": ts + 7 * MINUTE_MS,
              "back": ts - 3 * MINUTE_MS}.get(step, ts)
        row_ts = {"misaligned": ts + 1_234, "future": NOW + 5 * MINUTE_MS}.get(step, ts)
        price = max(1, price + price * move_bp // 10_000)
        close = {"spike": price * 3, "crash": price // 3, "absurd": price * 12}.get(kind, price)
        o, c = Decimal(price).scaleb(-2), Decimal(max(close, 1)).scaleb(-2)
        h, lo = max(o, c) * Decimal("1.001"), min(o, c) * Decimal("0.999")
        if kind == "broken":
            h, lo = lo, h
        v = Decimal(volume_milli).scaleb(-3)
        v = {"zero_volume": Decimal(0), "negative_volume": -v - 1,
             "huge_volume": v * 1000 + 10**6}.get(kind, v)
        tb = None if kind == "no_taker" else (v * 2 + 1 if kind == "taker_over" else v / 2)
        trades = 0 if kind == "quiet" else (None if volume_milli % 3 else volume_milli % 7)
        if kind in ("flat_fill", "quiet"):  # a zero-volume candle flat at the previous close
            o = h = lo = c = previous
            v, tb = Decimal(0), None
        row = {"timestamp": row_ts, "open": o, "high": h, "low": lo, "close": c, "volume": v,
               "taker_buy_volume": tb, "trades": trades}
        if kind == "special":
            row[field] = special
        rows.append(row)
        previous = row["close"]
    return rows


def scalar_candles(rows: list[dict[str, Any]], t: ValidationThresholds) -> list[Verdict]:
    validator = CandleValidator("BTC/USDT", TF, t, NOW)
    return [validator.check(r["timestamp"], *(r[f] for f in FIELDS)) for r in rows]


def as_frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in columns})
    frame["timestamp"] = np.array([r["timestamp"] for r in rows], dtype=np.int64)
    return frame


def split(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(n for n in names if n in HARD_RULES),
            tuple(n for n in names if n not in HARD_RULES))


def check_candle_engines(rows: list[dict[str, Any]], t: ValidationThresholds, ge: bool) -> None:
    scalar = scalar_candles(rows, t)
    frame = as_frame(rows, FIELDS)
    frames = validate_candle_frame(frame, TF, t, NOW)
    expected = [(v.hard, v.soft) for v in scalar]
    assert list(zip(frames["hard_rules"], frames["soft_rules"], strict=True)) == expected
    assert frames["validation_score"].tolist() == [v.score for v in scalar]
    assert [split(r) for r in candle_schema_rules(frame, TF, t, NOW)] == expected
    if ge:
        assert [split(r) for r in candle_expectation_rules(frame, TF, t, NOW)] == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(ROW, max_size=90), start=st.integers(100, 10**8), t=THRESHOLDS)
def test_scalar_frames_and_pandera_agree_on_candles(
    steps: list[tuple[Any, ...]], start: int, t: ValidationThresholds
) -> None:
    check_candle_engines(candle_rows(steps, start), t, ge=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(ROW, min_size=1, max_size=70), start=st.integers(100, 10**8),
       t=THRESHOLDS)
def test_great_expectations_agrees_on_candles(
    steps: list[tuple[Any, ...]], start: int, t: ValidationThresholds
) -> None:
    check_candle_engines(candle_rows(steps, start), t, ge=True)


def test_the_generators_reach_every_candle_rule() -> None:
    """Guard against a strategy that silently stopped producing some failures."""
    plan = [("next", "normal")] * 8 + [
        ("next", "spike"), ("gap", "spike"), ("next", "absurd"), ("next", "broken"),
        ("next", "special"), ("next", "zero_low"), ("dup", "normal"), ("back", "normal"),
        ("misaligned", "normal"), ("future", "normal"), ("next", "huge_volume"),
        ("next", "negative_volume"), ("next", "zero_volume"), ("next", "taker_over"),
        ("next", "flat_fill"), ("next", "quiet")]
    rows = candle_rows([(step, 0, "special" if kind == "zero_low" else kind,
                         Decimal(0) if kind == "zero_low" else None,
                         "low" if kind == "zero_low" else "close", 500 + 37 * i)
                        for i, (step, kind) in enumerate(plan)], 10_000)
    seen = {r for v in scalar_candles(rows, DEFAULT) for r in v.rules}
    assert seen == {r for r in Rule if r not in {
        Rule.MALFORMED_ROW, Rule.STALE, Rule.CROSS_EXCHANGE_DIVERGENCE, Rule.CONFIRMED_MOVE}}
    check_candle_engines(rows, DEFAULT, ge=True)


def test_float_columns_agree_with_decimal_columns() -> None:
    rng = np.random.default_rng(7)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.08, 300)))
    rows = [{"timestamp": T0 + i * MINUTE_MS, **dict.fromkeys(FIELDS[:4], Decimal(repr(c))),
             "volume": Decimal(repr(v)), "taker_buy_volume": None, "trades": None}
            for i, (c, v) in enumerate(zip(closes.tolist(), rng.pareto(1.5, 300).tolist(),
                                           strict=True))]
    decimals = validate_candle_frame(as_frame(rows, FIELDS), TF, DEFAULT, NOW)
    floats = pd.DataFrame({f: [float(r[f]) for r in rows] for f in FIELDS[:5]})
    floats["timestamp"] = [r["timestamp"] for r in rows]
    assert decimals.equals(validate_candle_frame(floats, TF, DEFAULT, NOW))
    assert {r for rules in decimals["hard_rules"] for r in rules} >= {Rule.PRICE_JUMP}


# -- ticks ----------------------------------------------------------------------------------------

TICK_FIELDS = ("price", "volume", "bid", "ask", "reference_price")
TICK = st.tuples(st.sampled_from(["next"] * 8 + ["same", "back", "late", "early", "pause"]),
                 st.integers(-300, 300), st.sampled_from(
                     ["normal"] * 8 + ["spike", "absurd", "special", "diverge", "crossed",
                                       "confirmed_spike", "confirmed_absurd"]),
                 SPECIAL, st.sampled_from(TICK_FIELDS))


def tick_rows(steps: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    ts, price, rows = T0, 1_000_000, []
    for step, move_bp, kind, special, field in steps:
        ts = {"next": ts + 700, "same": ts, "back": ts - 2_000, "late": ts + 500,
              "early": ts + 300, "pause": ts + 90_000}[step]
        received = {"late": ts + 6_000, "early": ts - 7_000}.get(step, ts + 40)
        price = max(100, price + price * move_bp // 10_000)
        p = Decimal({"spike": price * 2, "absurd": price * 15, "confirmed_spike": price * 2,
                     "confirmed_absurd": price * 15}.get(kind, price)).scaleb(-2)
        bid, ask = p - Decimal("0.01"), p + Decimal("0.01")
        if kind == "crossed":
            bid, ask = ask, bid
        reference = {"diverge": p * Decimal("1.2"), "normal": p, "confirmed_spike": p,
                     "confirmed_absurd": p * Decimal("1.01")}.get(kind)
        row = {"timestamp": ts, "received_at": received, "price": p, "volume": Decimal(10),
               "bid": bid, "ask": ask, "reference_price": reference}
        if kind == "special":
            row[field] = special
        rows.append(row)
    return rows


def tick_verdicts(rows: list[dict[str, Any]], t: ValidationThresholds, ge: bool
                  ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(hard, soft) per tick from the scalar validator, after checking the other engines agree."""
    validator = TickValidator("BTC/USDT", t)
    scalar = [validator.check(r["timestamp"], r["received_at"],
                              *(r[f] for f in TICK_FIELDS)) for r in rows]
    expected = [(v.hard, v.soft) for v in scalar]
    frame = as_frame(rows, TICK_FIELDS)
    frame["received_at"] = np.array([r["received_at"] for r in rows], dtype=np.int64)
    frames = validate_ticker_frame(frame, t)
    assert list(zip(frames["hard_rules"], frames["soft_rules"], strict=True)) == expected
    assert frames["validation_score"].tolist() == [v.score for v in scalar]
    assert [split(r) for r in ticker_schema_rules(frame, t)] == expected
    if ge:
        assert [split(r) for r in ticker_expectation_rules(frame, t)] == expected
    return expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(TICK, min_size=1, max_size=70), t=THRESHOLDS, ge=st.booleans())
def test_all_engines_agree_on_ticks(
    steps: list[tuple[Any, ...]], t: ValidationThresholds, ge: bool
) -> None:
    tick_verdicts(tick_rows(steps), t, ge)


def test_a_crash_tick_the_reference_venue_shows_is_kept_flagged_in_every_engine() -> None:
    calm = [("next", 0, "normal", None, "price")] * 6
    crash = ("next", -3_000, "normal", None, "price")  # a 30% drop in one tick
    rows = tick_rows([*calm, crash])  # "normal": the reference venue shows the same price
    alone = [dict(r, reference_price=None) for r in rows]
    elsewhere = [dict(r, reference_price=r["price"] / 2) for r in rows]
    assert tick_verdicts(rows, DEFAULT, ge=True)[-1] == ((), (Rule.CONFIRMED_MOVE,))
    assert tick_verdicts(alone, DEFAULT, ge=True)[-1] == ((Rule.PRICE_JUMP,), ())
    assert tick_verdicts(elsewhere, DEFAULT, ge=True)[-1] == (
        (Rule.PRICE_JUMP,), (Rule.CROSS_EXCHANGE_DIVERGENCE,))
