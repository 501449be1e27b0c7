"""Each validation rule with exact values on both sides of its threshold; thresholds from env."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.models import MarketDataPoint, OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, ms_to_datetime
from helios_pipeline.settings import Settings, SettingsError
from helios_pipeline.validation.outcome import validate_candles, validate_kline_rows
from helios_pipeline.validation.rules import (
    HARD_RULES,
    SOFT_RULES,
    Rule,
    ThresholdError,
    ValidationThresholds,
    Verdict,
    divergence,
    is_divergent,
    score,
    to_float,
)
from helios_pipeline.validation.scalar import (
    CandleValidator,
    SortedWindow,
    TickValidator,
    ValidationInputError,
)

T0 = 1_707_523_200_000  # 2024-02-10T00:00Z
NOW = T0 + 10 * 86_400_000
D = Decimal


def feed(rows: Sequence[tuple[Any, ...]], thresholds: ValidationThresholds | None = None,
         now_ms: int = NOW) -> list[Verdict]:
    """Verdicts of rows ``(minute_or_ts, o, h, l, c, v[, taker])``; minute < 10**6 is a minute."""
    validator = CandleValidator("BTC/USDT", Timeframe.M1, thresholds, now_ms)
    verdicts = []
    for row in rows:
        when, *values = row
        ts = T0 + when * MINUTE_MS if abs(when) < 10**6 else when
        verdicts.append(validator.check(ts, *values))
    return verdicts


def flat(n: int, price: str = "100", volume: str = "1") -> list[tuple[Any, ...]]:
    """``n`` consecutive candles at one price."""
    p = D(price)
    return [(i, p, p, p, p, D(volume)) for i in range(n)]


def last(rows: Sequence[tuple[Any, ...]], **thresholds: Any) -> Verdict:
    return feed(rows, ValidationThresholds(**thresholds) if thresholds else None)[-1]


# -- not_a_number ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [None, float("nan"), D("NaN"), D("sNaN"), float("inf"), -math.inf, D("Infinity"), "abc", "",
     True, 10**400, [1], object()],
)
def test_a_close_that_is_not_a_number_fails_hard(bad: object) -> None:
    verdict = last([(0, D(100), D(101), D(99), bad, D(1))])
    assert Rule.NOT_A_NUMBER in verdict.hard
    assert verdict.score == 0.0
    assert "close=" in verdict.details[Rule.NOT_A_NUMBER]


@pytest.mark.parametrize("good", [D("100.5"), "100.5", " 100.5 ", 100, 100.5])
def test_numbers_in_any_form_pass(good: object) -> None:
    assert last([(0, D(100), D(101), D(99), good, D(1))]).hard == ()


def test_taker_buy_volume_absent_passes_but_present_garbage_fails() -> None:
    row = (0, D(100), D(101), D(99), D(100), D(1))
    assert last([(*row, None)]).hard == ()
    assert last([(*row, float("nan"))]).hard == ()  # a float NaN reads as "not reported"
    assert last([(*row, D("NaN"))]).hard == (Rule.NOT_A_NUMBER,)
    assert last([(*row, "x")]).hard == (Rule.NOT_A_NUMBER,)


def test_to_float_is_correctly_rounded_and_never_raises() -> None:
    assert to_float(D("0.1")) == to_float("0.1") == 0.1
    assert to_float(10**400) == math.inf
    assert to_float(-(10**400)) == -math.inf
    for value in (None, True, "x", D("sNaN"), b"\xff", object(), [1]):
        assert math.isnan(to_float(value))


# -- non_positive_price ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "broken"),
    [(D("0"), True), (D("-0.00000001"), True), (D("0.00000001"), False)],
)
def test_non_positive_price(low: Decimal, broken: bool) -> None:
    verdict = last([(0, D(1), D(1), low, D(1), D(1))])
    assert (Rule.NON_POSITIVE_PRICE in verdict.hard) is broken


# -- ohlc_inconsistent ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("o", "h", "lo", "c", "broken"),
    [
        ("100", "101", "99", "100.5", False),
        ("100", "100", "100", "100", False),  # equality on every side is consistent
        ("100", "101", "99", "101", False),
        ("100", "99.99", "99", "99.5", True),  # high below open
        ("100", "101", "99", "101.01", True),  # high below close
        ("100", "101", "100.01", "100.5", True),  # low above open
        ("100.5", "101", "100.01", "100", True),  # low above close
    ],
)
def test_ohlc_consistency(o: str, h: str, lo: str, c: str, broken: bool) -> None:
    verdict = last([(0, D(o), D(h), D(lo), D(c), D(1))])
    assert (Rule.OHLC_INCONSISTENT in verdict.hard) is broken


# -- negative_volume ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "taker", "broken"),
    [
        ("0", None, False),
        ("-0.00000001", None, True),
        ("1", "1", False),
        ("1", "1.00000001", True),
        ("1", "-0.00000001", True),
        ("1", "0", False),
    ],
)
def test_negative_volume(volume: str, taker: str | None, broken: bool) -> None:
    tb = None if taker is None else D(taker)
    verdict = last([(0, D(1), D(1), D(1), D(1), D(volume), tb)])
    assert (Rule.NEGATIVE_VOLUME in verdict.hard) is broken


# -- timestamps -----------------------------------------------------------------------------------


def test_misaligned_duplicate_and_out_of_order_timestamps() -> None:
    p = D(100)
    rows = [(0, p, p, p, p, p), (1, p, p, p, p, p), (1, p, p, p, p, p), (0, p, p, p, p, p),
            (T0 + 2 * MINUTE_MS + 1, p, p, p, p, p), (2, p, p, p, p, p)]
    hard = [v.hard for v in feed(rows)]
    assert hard == [(), (), (Rule.DUPLICATE_TIMESTAMP,), (Rule.OUT_OF_ORDER_TIMESTAMP,),
                    (Rule.MISALIGNED_TIMESTAMP,), ()]  # a misaligned time never moves the mark


def test_future_timestamp_boundary() -> None:
    p = D(100)
    tolerance = ValidationThresholds().clock_tolerance_ms
    closed = [(0, p, p, p, p, p)]
    now = T0 + MINUTE_MS - tolerance  # open + length == now + tolerance: closed enough
    assert feed(closed, now_ms=now)[0].hard == ()
    assert feed(closed, now_ms=now - 1)[0].hard == (Rule.FUTURE_TIMESTAMP,)


def test_a_future_row_does_not_make_the_next_rows_out_of_order() -> None:
    p = D(100)
    rows = [(0, p, p, p, p, p), (10**5, p, p, p, p, p), (1, p, p, p, p, p)]
    assert [v.hard for v in feed(rows, now_ms=T0 + 10 * MINUTE_MS)] == [
        (), (Rule.FUTURE_TIMESTAMP,), ()]


# -- price_jump -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("high", "low", "rule"),
    [
        ("120", "100", None),  # |120 - 100| / 100 == 0.2: not above max_jump
        ("120.01", "100", Rule.PRICE_JUMP),
        ("100", "80", None),
        ("100", "79.99", Rule.PRICE_JUMP),
    ],
)
def test_price_jump_against_the_median_of_the_previous_five_closes(
    high: str, low: str, rule: Rule | None
) -> None:
    rows = [*flat(5), (5, D(100), D(high), D(low), D(100), D(1))]
    verdict = last(rows)
    assert verdict.hard == (() if rule is None else (rule,))


def test_an_isolated_spike_fails_without_poisoning_the_next_candle() -> None:
    spike = (5, D(100), D(300), D(100), D(300), D(1))
    after = (6, D(100), D(100.5), D(99.5), D(100), D(1))
    verdicts = feed([*flat(5), spike, after])
    assert verdicts[5].hard == (Rule.PRICE_JUMP,)
    assert "jump=2.0" in verdicts[5].details[Rule.PRICE_JUMP]
    assert verdicts[6].hard == ()


def test_a_jump_right_after_a_gap_is_flagged_soft_not_refused() -> None:
    jumped = (8, D(125), D(125), D(125), D(125), D(1))  # minutes 5..7 were not sent
    verdict = last([*flat(5), jumped])
    assert verdict.hard == ()
    assert verdict.soft == (Rule.PRICE_JUMP_AFTER_GAP,)
    assert verdict.score == 0.75


def test_the_gap_is_measured_from_the_latest_numeric_close() -> None:
    p = D(100)
    nan_close = (5, p, p, p, None, D(1))
    jumped = (6, D(125), D(125), D(125), D(125), D(1))
    verdicts = feed([*flat(5), nan_close, jumped])
    assert verdicts[6].soft == (Rule.PRICE_JUMP_AFTER_GAP,)


def test_max_jump_override() -> None:
    rows = [*flat(5), (5, D(125), D(125), D(125), D(125), D(1))]
    assert last(rows).hard == (Rule.PRICE_JUMP,)
    assert last(rows, max_jump=0.3).hard == ()


# -- absurd_price ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("price", "absurd"), [("999.99", False), ("1000", True)])
def test_absurd_price_at_ten_times_the_recent_median(price: str, absurd: bool) -> None:
    rows = [*flat(5), (5, D(100), D(price), D(100), D(100), D(1))]
    verdict = last(rows, max_jump=1000.0)
    assert (Rule.ABSURD_PRICE in verdict.hard) is absurd


def test_absurd_price_needs_five_known_closes() -> None:
    rows = [*flat(4), (4, D(100), D(10**6), D(100), D(100), D(1))]
    assert Rule.ABSURD_PRICE not in last(rows, max_jump=10**9).hard
    rows = [*flat(5), (5, D(100), D(10**6), D(100), D(100), D(1))]
    assert Rule.ABSURD_PRICE in last(rows, max_jump=10**9).hard


# -- volume_outlier -------------------------------------------------------------------------------


def volumes(*values: str) -> list[tuple[Any, ...]]:
    p = D(100)
    return [(i, p, p, p, p, D(v)) for i, v in enumerate(values)]


@pytest.mark.parametrize(("volume", "outlier"), [("17.82", False), ("17.83", True)])
def test_volume_outlier_modified_z_score(volume: str, outlier: bool) -> None:
    # median 3, MAD median(|x - 3|) = 1: z = 0.6745 * (v - 3) / 1; 17.82 -> 9.996, 17.83 -> 10.003
    verdict = last(volumes("1", "2", "3", "4", "5", volume))
    assert verdict.hard == ()
    assert verdict.soft == ((Rule.VOLUME_OUTLIER,) if outlier else ())
    assert verdict.score == (0.75 if outlier else 1.0)


def test_volume_outlier_is_upper_tail_only_and_needs_history_and_spread() -> None:
    # A zero volume is no outlier (it is flat at the previous close: flat_fill, a separate flag).
    assert last(volumes("100", "101", "102", "103", "104", "0")).soft == (Rule.FLAT_FILL,)
    assert last(volumes("1", "2", "3", "4", "1000")).soft == ()  # four known volumes only
    assert last(volumes("2", "2", "2", "2", "2", "1000")).soft == ()  # MAD == 0: no scale
    assert last(volumes("1", "2", "3", "4", "5", "1000"), volume_z=1000.0).soft == ()


def test_sorted_window_median_and_mad_are_the_lower_selections() -> None:
    window = SortedWindow(5)
    for value in (5.0, 1.0, 4.0, 2.0):
        window.push(value)
    assert window.median() == 2.0  # lower median of 1 2 4 5
    assert window.mad(2.0) == 1.0  # |x - 2|: 1 0 2 3 -> lower median 1
    for value in (9.0, 9.0, 9.0):
        window.push(value)
    assert len(window) == 5
    assert window.median() == 9.0  # 2 4 9 9 9 (5 and 1 dropped)


@settings(max_examples=300, deadline=None)
@given(size=st.sampled_from([1, 2, 3, 5, 7, 59]),
       values=st.lists(st.floats(-1e6, 1e6) | st.integers(0, 3).map(float), min_size=1,
                       max_size=80))
def test_window_mad_equals_the_sorted_selection_and_its_floor_bounds_it(
    size: int, values: list[float]
) -> None:
    window = SortedWindow(size)
    for value in values:
        window.push(value)
    kept = sorted(x + 0.0 for x in values[-size:])
    median = kept[(len(kept) - 1) // 2]
    deviations = sorted(abs(x - median) for x in kept)
    assert window.median() == median
    assert window.mad(median) == deviations[(len(kept) - 1) // 2]
    assert window.mad_floor(median) <= window.mad(median)


# -- score, verdicts, divergence ------------------------------------------------------------------


def test_score_and_rule_sets() -> None:
    assert score(0, 0, 0.25) == 1.0
    assert score(0, 2, 0.25) == 0.5
    assert score(0, 5, 0.25) == 0.0
    assert score(1, 0, 0.25) == 0.0
    assert not HARD_RULES & SOFT_RULES
    assert set(Rule) == HARD_RULES | SOFT_RULES
    both = last([(0, D(100), D(99), D(99), D(100), D(-1))])
    assert both.hard == (Rule.OHLC_INCONSISTENT, Rule.NEGATIVE_VOLUME)
    assert both.rules == both.hard


def test_divergence_is_relative_to_the_lower_price() -> None:
    assert divergence(D(100), D(105)) == divergence(D(105), D(100)) == 0.05
    t = ValidationThresholds()
    assert not is_divergent(D(100), D(105), t)
    assert is_divergent(D(100), D("105.01"), t)
    assert divergence(D(0), D(1)) == math.inf


# -- ticks ----------------------------------------------------------------------------------------


def point(ms: int, price: str = "100", bid: str = "99.9", ask: str = "100.1") -> MarketDataPoint:
    p, b, a = D(price), D(bid), D(ask)
    return MarketDataPoint("BTC/USDT", ms_to_datetime(ms), p, D(10), b, a, a - b, "binance")


def test_tick_rules() -> None:
    v = TickValidator("BTC/USDT")
    assert v.validate(point(T0), received_ms=T0 + 5_000).rules == ()
    assert v.validate(point(T0 + 1), received_ms=T0 + 5_002).rules == (Rule.STALE,)
    assert v.validate(point(T0 + 10_000), received_ms=T0 + 4_999).hard == (
        Rule.FUTURE_TIMESTAMP,)
    assert v.validate(point(T0 - 1), received_ms=T0).hard == (Rule.OUT_OF_ORDER_TIMESTAMP,)
    assert v.validate(point(T0 + 2), received_ms=T0 + 2, reference_price=D("106")).soft == (
        Rule.CROSS_EXCHANGE_DIVERGENCE,)
    assert v.validate(point(T0 + 3, "0", "0", "1"), received_ms=T0 + 3).hard == (
        Rule.NON_POSITIVE_PRICE, Rule.PRICE_JUMP)
    assert v.validate(point(T0 + 120_000, "130", "129.9", "130.1"),
                      received_ms=T0 + 120_000).soft == (Rule.PRICE_JUMP_AFTER_GAP,)


def test_a_lone_bad_tick_does_not_move_the_reference_but_a_real_move_becomes_it() -> None:
    v = TickValidator("BTC/USDT")
    ms = [T0 + i * 1_000 for i in range(20)]
    for t in ms[:5]:
        assert v.validate(point(t), received_ms=t).rules == ()
    assert v.validate(point(ms[5], "300", "299.9", "300.1"), received_ms=ms[5]).hard == (
        Rule.PRICE_JUMP,)
    for t in ms[6:11]:  # judged against the market, not the spike
        assert v.validate(point(t), received_ms=t).rules == ()
    # The market really moves by 30%: refused until it is the median of the last five prices
    # (three of them), then accepted, instead of refused for ever.
    moved = [v.validate(point(t, "130", "129.9", "130.1"), received_ms=t).hard for t in ms[11:16]]
    assert moved == [(Rule.PRICE_JUMP,)] * 3 + [()] * 2


def test_validators_refuse_other_symbols_and_timeframes() -> None:
    candle = OHLCVData("ETH/USDT", datetime(2024, 2, 10, tzinfo=UTC), Timeframe.M1, D(1), D(1),
                       D(1), D(1), D(1), None, None)
    with pytest.raises(ValidationInputError, match="ETH/USDT"):
        CandleValidator("BTC/USDT", Timeframe.M1).validate(candle)
    with pytest.raises(ValidationInputError, match="5m"):
        CandleValidator("ETH/USDT", Timeframe.M5).validate(candle)
    with pytest.raises(ValidationInputError, match="one validator per symbol"):
        TickValidator("ETH/USDT").validate(point(T0))


# -- thresholds from HELIOS_VALIDATION ------------------------------------------------------------


def test_thresholds_override_from_the_environment() -> None:
    settings = Settings.from_env({"HELIOS_VALIDATION": "max_jump=0.3, volume_z=5,average_window=7"})
    t = settings.validation
    assert (t.max_jump, t.volume_z, t.average_window) == (0.3, 5.0, 7)
    assert t.reference_window == 5
    assert Settings.from_env({}).validation == ValidationThresholds()
    rows = [*flat(5), (5, D(125), D(125), D(125), D(125), D(1))]
    assert feed(rows, t)[-1].hard == ()


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("max_jmp=0.3,volumez=5,max_jump=0.2", ["max_jmp", "volumez"]),
        ("max_jump=abc", ["max_jump", "abc"]),
        ("average_window=58", ["average_window", "odd"]),
        ("max_jump=-1", ["max_jump", "above 0"]),
        ("volume_window=5.5", ["volume_window", "integer"]),
        ("max_jump", ["max_jump", "key=value"]),
    ],
)
def test_bad_thresholds_are_a_settings_error_naming_them(spec: str, names: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"HELIOS_VALIDATION": spec})
    message = str(caught.value)
    assert "HELIOS_VALIDATION" in message
    for name in names:
        assert name in message


def test_thresholds_refuse_unusable_values_directly() -> None:
    with pytest.raises(ThresholdError, match="reference_window"):
        ValidationThresholds(reference_window=4)
    with pytest.raises(ThresholdError, match="max_jump"):
        ValidationThresholds(max_jump=math.nan)


# -- outcome: accepted candles and quarantine records ---------------------------------------------


def test_validate_candles_splits_a_batch_and_marks_what_it_accepts() -> None:
    opened = datetime(2024, 2, 10, tzinfo=UTC)

    def make(minute: int, **fields: Any) -> OHLCVData:
        values: dict[str, Any] = {
            "symbol": "BTC/USDT", "timestamp": opened + timedelta(minutes=minute),
            "timeframe": Timeframe.M1, "open": D(100), "high": D(101), "low": D(99),
            "close": D(100), "volume": D(1), "trades": 3, "taker_buy_volume": None}
        values.update(fields)
        return OHLCVData(**values)

    batch = [make(0), make(1, timestamp=opened.replace(tzinfo=None)),
             make(2, timestamp=opened + timedelta(minutes=2, microseconds=500)),
             make(3, symbol="ETH/USDT"), make(0), make(4, close=D("NaN")),
             make(9, high=D(125), close=D(125))]

    outcome = validate_candles(batch, "BTC/USDT", Timeframe.M1, now_ms=NOW, source="test")

    assert [c.timestamp.minute for c in outcome.accepted] == [0, 9]
    first, jumped = outcome.accepted
    assert (first.is_validated, first.validation_score, first.anomaly_flags) == (True, 1.0, ())
    assert (jumped.validation_score, jumped.anomaly_flags) == (0.75, ("price_jump_after_gap",))
    assert [r.rules for r in outcome.quarantined] == [
        ("malformed_row",), ("misaligned_timestamp",), ("malformed_row",),
        ("duplicate_timestamp",), ("not_a_number",)]
    naive, _, other, _, nan = outcome.quarantined
    assert naive.timestamp_ms is None
    assert "tz-aware" in naive.values["malformed_row"]
    assert "ETH/USDT" in other.values["malformed_row"]
    assert nan.values["close"] == "NaN"
    assert nan.raw["close"] == "NaN"
    assert outcome.soft_flagged == 1


def test_kline_rows_become_exact_candles() -> None:
    rows = [[T0, "100.10", "101", "99", "100.5", "2.5", T0 + 59_999, "250", 7, "1", "100", "0"],
            [T0 + MINUTE_MS, 100.25, 101, 99.5, 100.5, 3]]
    outcome = validate_kline_rows(rows, "BTC/USDT", Timeframe.M1, now_ms=NOW)
    first, second = outcome.accepted
    assert (first.open, first.trades, first.close_time_ms, first.quote_volume) == (
        D("100.10"), 7, T0 + 59_999, D(250))
    assert (second.open, second.high, second.taker_buy_volume, second.trades) == (
        D("100.25"), D(101), None, None)
    assert outcome.quarantined == []


# -- flat_fill ------------------------------------------------------------------------------------


def test_flat_fill_needs_zero_volume_four_prices_at_the_previous_close_and_no_zero_count() -> None:
    p = D(100)
    before = [(0, D(99), D(101), D(99), p, D(3))]
    assert last([*before, (1, p, p, p, p, D(0))]).soft == (Rule.FLAT_FILL,)
    assert last([*before, (1, p, p, p, p, D("0.1"))]).soft == ()  # traded
    assert last([*before, (1, p, D(101), p, p, D(0))]).soft == ()  # not flat
    assert last([(0, D(99), D(99), D(99), D(99), D(3)), (1, p, p, p, p, D(0))],
                max_jump=1.0).soft == ()  # flat, but not at the previous close
    validator = CandleValidator("BTC/USDT", Timeframe.M1, now_ms=10**13)
    validator.check(0, D(99), D(101), D(99), p, D(3))
    assert validator.check(60_000, p, p, p, p, D(0), None, 0).soft == ()  # exchange: no trades
    assert validator.check(120_000, p, p, p, p, D(0), None, None).soft == (Rule.FLAT_FILL,)
