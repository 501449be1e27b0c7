"""reconcile_candles: live 1m candles vs REST 1m candles, minute by minute, exact decimals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, datetime_to_ms, ms_to_datetime
from helios_pipeline.realtime.candles import LiveCandleBuilder
from helios_pipeline.realtime.reconcile import CandleDifference, reconcile_candles

H0 = datetime_to_ms(datetime(2024, 3, 5, 10, 0, tzinfo=UTC))
H1 = H0 + 60 * MINUTE_MS
D = Decimal
SYMBOL = "BTC/USDT"
# (open, high, low, close, volume) of minutes 0..3 of the hour; minute 4 had no trades.
ROWS = [("100.10", "101.00", "99.95", "100.50", "1.875"),
        ("100.50", "100.50", "100.20", "100.25", "0.5"),
        ("100.25", "102.00", "100.25", "101.75", "3.00000001"),
        ("101.75", "101.80", "101.70", "101.80", "0.25")]


def rest(i: int, row: tuple[str, ...], **changes: object) -> OHLCVData:
    o, h, lo, c, v = (D(x) for x in row)
    candle = OHLCVData(SYMBOL, ms_to_datetime(H0 + i * MINUTE_MS), Timeframe.M1, o, h, lo, c, v,
                       trades=3, taker_buy_volume=None,
                       close_time_ms=H0 + (i + 1) * MINUTE_MS - 1)
    return replace(candle, **changes)  # type: ignore[arg-type]


def live_from_trades(i: int, row: tuple[str, ...]) -> LiveCandle:
    """The live candle LiveCandleBuilder makes from trades hitting ``row``'s o/h/l/c/v."""
    o, h, lo, c, v = (D(x) for x in row)
    start = H0 + i * MINUTE_MS
    b = LiveCandleBuilder(SYMBOL)
    trades = [(start + 1_000, o), (start + 2_000, h), (start + 3_000, lo), (start + 59_000, c)]
    quarter = v / 4
    for ts, price in trades:
        b.add(ts, price, quarter, ts + 5)
    [candle] = b.close_due(start + MINUTE_MS)
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (o, h, lo, c, v)
    return candle


def both_sides() -> tuple[list[LiveCandle], list[OHLCVData]]:
    lives = [live_from_trades(i, row) for i, row in enumerate(ROWS)]
    rests = [rest(i, row) for i, row in enumerate(ROWS)]
    rests.append(rest(4, ("101.80",) * 4 + ("0",), trades=0))  # a minute without trades
    return lives, rests


def test_agreeing_hour_passes_and_counts_every_minute() -> None:
    lives, rests = both_sides()
    # Equal values written differently are equal decimals: "100.1" vs "100.10".
    rests[0] = replace(rests[0], open=D("100.1"), volume=D("1.87500"))
    report = reconcile_candles(lives, rests, H0, H1)
    assert report.agrees
    assert (report.compared, report.matched) == (5, 5)  # the empty minute agrees with no candle
    assert (report.live_candles, report.rest_candles) == (4, 5)
    assert report.differences == ()
    assert report.missing_live == report.missing_rest == report.mismatched == ()


def test_minute_missing_from_the_stream() -> None:
    lives, rests = both_sides()
    del lives[2]
    report = reconcile_candles(lives, rests, H0, H1)
    assert not report.agrees
    assert report.missing_live == (H0 + 2 * MINUTE_MS,)
    assert (report.compared, report.matched) == (5, 4)
    [diff] = report.differences
    assert diff == CandleDifference(H0 + 2 * MINUTE_MS, "missing_live", rest=D("3.00000001"))
    assert diff.describe() == ("10:02 missing live: REST has a candle (volume 3.00000001), "
                               "the stream none")


def test_minute_missing_from_rest() -> None:
    lives, rests = both_sides()
    del rests[1]
    report = reconcile_candles(lives, rests, H0, H1)
    assert not report.agrees
    assert report.missing_rest == (H0 + MINUTE_MS,)
    assert report.missing_live == report.mismatched == ()
    assert [d.describe() for d in report.differences] == [
        "10:01 missing REST: the stream has a candle (volume 0.500), REST none"]


def test_field_mismatch_names_minute_field_and_both_values() -> None:
    lives, rests = both_sides()
    rests[3] = replace(rests[3], close=D("101.81"), volume=D("0.25000001"))
    report = reconcile_candles(lives, rests, H0, H1)
    assert not report.agrees
    assert report.mismatched == (H0 + 3 * MINUTE_MS,)
    assert (report.compared, report.matched) == (5, 4)
    assert [(d.field, d.live, d.rest) for d in report.differences] == [
        ("close", D("101.80"), D("101.81")), ("volume", D("0.25"), D("0.25000001"))]
    assert report.differences[0].describe() == "10:03 close: live 101.80 != REST 101.81"


def test_amended_candles_are_listed_and_their_differences_flagged() -> None:
    lives, rests = both_sides()
    start = H0 + 2 * MINUTE_MS
    b = LiveCandleBuilder(SYMBOL, late_tolerance_ms=2_000)
    b.add(start + 1_000, D("100.25"), D("3"), start + 1_005)
    b.close_due(start + MINUTE_MS)
    # A late trade within the tolerance amends the closed minute (version 2).
    [amended] = b.add(start + 30_000, D("102.00"), D("0.00000001"), start + MINUTE_MS + 1_500)
    assert (amended.amended, amended.version) == (True, 2)
    lives[2] = amended
    report = reconcile_candles(lives, rests, H0, H1)
    assert report.amended == (start,)
    assert report.mismatched == (start,)  # close 102.00 vs REST 101.75
    [diff] = report.differences
    assert (diff.field, diff.amended, diff.live_version) == ("close", True, 2)
    assert diff.describe() == "10:02 close: live 102.00 != REST 101.75 (amended, v2)"
    # An amendment that makes the minute right is listed but is no difference.
    rests[2] = replace(rests[2], close=D("102.00"))
    report = reconcile_candles(lives, rests, H0, H1)
    assert report.agrees
    assert report.amended == (start,)


def test_highest_version_of_a_minute_counts() -> None:
    lives, rests = both_sides()
    stale = replace(lives[0], close=D(1), version=1)
    newest = replace(lives[0], version=2, amended=True)
    report = reconcile_candles([newest, stale, *lives[1:]], rests, H0, H1)
    assert report.agrees
    assert report.amended == (H0,)


def test_incomplete_minutes_are_skipped_not_compared() -> None:
    lives, rests = both_sides()
    lives[0] = replace(lives[0], complete=False, volume=D("0.1"))  # stream started mid-minute
    rests[1] = replace(rests[1], close_time_ms=H0 + MINUTE_MS + 30_000, close=D(7))  # cut short
    del lives[3]
    lives.append(replace(lives[2], open_ms=H0 + 3 * MINUTE_MS, complete=False))
    report = reconcile_candles(lives, rests, H0, H1)
    assert report.incomplete == (H0, H0 + MINUTE_MS, H0 + 3 * MINUTE_MS)
    assert report.agrees
    assert (report.compared, report.matched) == (2, 2)


def test_only_the_window_is_compared() -> None:
    lives, rests = both_sides()
    outside = replace(lives[0], open_ms=H1)
    before = rest(-1, ROWS[0])
    report = reconcile_candles([*lives, outside], [before, *rests], H0, H1)
    assert report.agrees
    assert (report.live_candles, report.rest_candles) == (4, 5)


def test_empty_stream_reports_every_traded_minute_missing() -> None:
    _, rests = both_sides()
    report = reconcile_candles([], rests, H0, H1)
    assert report.live_candles == 0
    assert len(report.missing_live) == 4


def test_bad_input_is_refused_with_the_reason() -> None:
    _, rests = both_sides()
    with pytest.raises(ValueError, match=r"end_ms=.* is before start_ms"):
        reconcile_candles([], rests, H1, H0)
    with pytest.raises(ValueError, match="5m, not 1m"):
        reconcile_candles([], [replace(rests[0], timeframe=Timeframe.M5)], H0, H1)
