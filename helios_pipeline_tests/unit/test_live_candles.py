"""LiveCandleBuilder: minutes close on the clock, late trades amend or are flagged, exact sums."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import MINUTE_MS, datetime_to_ms
from helios_pipeline.realtime.candles import LiveCandleBuilder
from helios_pipeline.storage.hot.live_candles import decode_candle, encode_candle

T0 = datetime_to_ms(datetime(2024, 3, 5, 10, 0, tzinfo=UTC))  # a minute boundary
D = Decimal


def builder(**kwargs: int) -> LiveCandleBuilder:
    return LiveCandleBuilder("BTC/USDT", **kwargs)


def feed(b: LiveCandleBuilder, trades: list[tuple[int, str, str]], lag_ms: int = 3
         ) -> list[LiveCandle]:
    out: list[LiveCandle] = []
    for ts, price, qty in trades:
        out += b.add(ts, D(price), D(qty), ts + lag_ms)
    return out


def test_minute_closes_when_the_clock_passes_its_end_without_a_next_trade() -> None:
    b = builder()
    assert feed(b, [(T0 + 5_000, "100.10", "0.5"), (T0 + 30_000, "101.00", "0.25"),
                    (T0 + 59_999, "99.95", "1.125")]) == []
    assert b.close_due(T0 + 59_999) == []  # not over yet
    [candle] = b.close_due(T0 + MINUTE_MS)  # exactly on the boundary
    assert (candle.open_ms, candle.open, candle.high, candle.low, candle.close) == (
        T0, D("100.10"), D("101.00"), D("99.95"), D("99.95"))
    assert candle.volume == D("1.875")
    assert str(candle.volume) == "1.875"
    assert (candle.trades, candle.version, candle.amended) == (3, 1, False)
    assert (candle.first_trade_ms, candle.last_trade_ms) == (T0 + 5_000, T0 + 59_999)
    assert candle.emitted_ms == T0 + MINUTE_MS
    assert b.close_due(T0 + MINUTE_MS + 500) == []  # emitted once
    assert b.open_minute_ms is None


def test_a_trade_of_the_next_minute_closes_the_previous_one_first() -> None:
    b = builder()
    feed(b, [(T0 + 1_000, "10", "1"), (T0 + 2_000, "11", "2")])
    [closed] = feed(b, [(T0 + MINUTE_MS + 10, "12", "3")])
    assert (closed.open_ms, closed.close, closed.volume, closed.trades) == (T0, D(11), D(3), 2)
    assert b.open_minute_ms == T0 + MINUTE_MS
    assert b.close_due(T0 + MINUTE_MS + 20) == []  # the first minute is not emitted again


def test_late_trade_within_tolerance_amends_the_closed_candle() -> None:
    b = builder(late_tolerance_ms=2_000)
    feed(b, [(T0 + 10_000, "50", "1"), (T0 + 40_000, "51", "1")])
    [first] = b.close_due(T0 + MINUTE_MS)
    # Exchange time inside the minute, arriving 1.5 s after it ended (e.g. held back upstream).
    [amended] = b.add(T0 + 59_000, D("55.5"), D("0.5"), T0 + MINUTE_MS + 1_500)
    assert (amended.open_ms, amended.version, amended.amended) == (T0, 2, True)
    assert (amended.high, amended.close, amended.volume, amended.trades) == (
        D("55.5"), D("55.5"), D("2.5"), 3)
    assert (amended.open, amended.low) == (first.open, first.low)
    # A late trade older than the first one becomes the open; exactly at the tolerance still counts.
    [again] = b.add(T0 + 1_000, D("49"), D("1"), T0 + MINUTE_MS + 2_000)
    assert (again.version, again.open, again.low, again.close) == (3, D(49), D(49), D("55.5"))
    assert (again.first_trade_ms, again.volume) == (T0 + 1_000, D("3.5"))
    assert b.late_trades == 0
    assert b.amendments == 2


def test_late_trade_beyond_tolerance_is_flagged_and_not_applied() -> None:
    b = builder(late_tolerance_ms=2_000)
    feed(b, [(T0 + 10_000, "50", "1")])
    [candle] = b.close_due(T0 + MINUTE_MS)
    assert b.add(T0 + 59_000, D("70"), D("9"), T0 + MINUTE_MS + 2_001) == []
    assert b.late_trades == 1
    [late] = list(b.recent_late)
    assert (late.ts_ms, late.price, late.qty, late.late_by_ms) == (T0 + 59_000, D(70), D(9), 2_001)
    assert b.close_due(T0 + 2 * MINUTE_MS) == []  # nothing was applied or re-emitted
    assert (candle.high, candle.volume, candle.version) == (D(50), D(1), 1)


def test_a_minute_without_trades_yields_no_candle() -> None:
    b = builder()
    feed(b, [(T0 + 1_000, "1", "1")])
    assert len(b.close_due(T0 + 3 * MINUTE_MS + 5)) == 1  # minutes 1 and 2 had no trades
    [next_minute] = [*feed(b, [(T0 + 3 * MINUTE_MS + 100, "2", "1")]),
                     *b.close_due(T0 + 4 * MINUTE_MS)]
    assert next_minute.open_ms == T0 + 3 * MINUTE_MS


def test_late_trade_of_a_minute_that_closed_empty_creates_an_amended_candle() -> None:
    b = builder(late_tolerance_ms=2_000)
    b.close_due(T0 + MINUTE_MS + 100)  # minute T0 closed with no trades
    [created] = b.add(T0 + 59_900, D("7"), D("2"), T0 + MINUTE_MS + 900)
    assert (created.open_ms, created.version, created.amended, created.trades) == (T0, 1, True, 1)


def test_exact_sums_never_round() -> None:
    b = builder()
    quantities = ["0.1"] * 10 + ["0.00000001"] * 999 + ["98765432.12345678", "1E-30"]
    feed(b, [(T0 + i, "67123.45678901", q) for i, q in enumerate(quantities)])
    [candle] = b.close_due(T0 + MINUTE_MS)
    # 38 significant digits: Decimal's default 28-digit context would have rounded the 1E-30.
    assert str(candle.volume) == "98765433.123466770000000000000000000001"
    assert candle.trades == len(quantities)
    assert sum(map(float, quantities)) != float(candle.volume)  # a float sum is off at 1e-8


def test_candles_flag_minutes_that_may_miss_trades() -> None:
    b = builder(started_ms=T0 + 20_000)  # started mid-minute 0: that minute is partial
    out = feed(b, [(T0 + 30_000, "1", "1"), (T0 + MINUTE_MS + 1, "1", "1"),
                   (T0 + 2 * MINUTE_MS + 1, "1", "1")])
    b.outage_began(T0 + 2 * MINUTE_MS + 30_000)  # the trade feed is lost during minute 2 ...
    out += b.close_due(T0 + 3 * MINUTE_MS)  # ... which closes on the clock during the outage
    b.outage_ended(T0 + 3 * MINUTE_MS + 5_000)  # back during minute 3
    out += feed(b, [(T0 + 3 * MINUTE_MS + 6_000, "1", "1"), (T0 + 4 * MINUTE_MS + 1, "1", "1")])
    b.mark_missing(T0 + 4 * MINUTE_MS + 50)  # a trade of minute 4 was shed
    out += feed(b, [(T0 + 5 * MINUTE_MS + 1, "1", "1")])
    out += b.close_due(T0 + 6 * MINUTE_MS)
    assert {(c.open_ms - T0) // MINUTE_MS: c.complete for c in out} == {
        0: False, 1: True, 2: False, 3: False, 4: False, 5: True}


def test_candle_round_trips_through_its_stored_form() -> None:
    b = builder()
    feed(b, [(T0 + 1, "0.00001230", "1000.10"), (T0 + 2, "0.00001231", "5")])
    [candle] = b.close_due(T0 + MINUTE_MS)
    assert decode_candle(encode_candle(candle)) == candle
    assert str(decode_candle(encode_candle(candle)).open) == "0.00001230"
    with pytest.raises(ValueError, match="Not a live candle"):
        LiveCandle.from_dict({"symbol": "BTC/USDT"})


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="late_tolerance_ms"):
        LiveCandleBuilder("BTC/USDT", late_tolerance_ms=-1)


trades_strategy = st.lists(
    st.tuples(st.integers(0, 400), st.integers(1, 10**12), st.integers(1, 10**12)),
    min_size=1, max_size=200)


@settings(max_examples=150, deadline=None)
@given(steps=trades_strategy)
def test_candles_equal_a_brute_force_aggregate_of_in_order_trades(
        steps: list[tuple[int, int, int]]) -> None:
    b = builder()
    ts = T0
    trades: list[tuple[int, Decimal, Decimal]] = []
    emitted: list[LiveCandle] = []
    for gap_ms, price_units, qty_units in steps:
        ts += gap_ms * 97  # up to ~39 s between trades: some minutes are skipped
        price, qty = D(price_units).scaleb(-8), D(qty_units).scaleb(-8)
        trades.append((ts, price, qty))
        emitted += b.add(ts, price, qty, ts + 5)
        emitted += b.close_due(ts + 5)
    emitted += b.close_due(ts + MINUTE_MS)
    by_minute: dict[int, list[tuple[int, Decimal, Decimal]]] = {}
    for trade in trades:
        by_minute.setdefault(trade[0] - trade[0] % MINUTE_MS, []).append(trade)
    assert [c.open_ms for c in emitted] == sorted(by_minute)
    for candle in emitted:
        rows = by_minute[candle.open_ms]
        prices = [p for _, p, _ in rows]
        assert (candle.open, candle.high, candle.low, candle.close) == (
            prices[0], max(prices), min(prices), prices[-1])
        assert candle.volume == sum((q for _, _, q in rows), D(0))
        assert (candle.trades, candle.amended, candle.version) == (len(rows), False, 1)
