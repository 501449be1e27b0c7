"""Live indicator series fed live candles (drafts, amendments, gaps) equal the batch values."""

from __future__ import annotations

from dataclasses import replace

import pytest

from helios_pipeline.domain.timeframe import MINUTE_MS
from helios_pipeline.realtime.indicator_series import (
    Bar,
    LiveSeries,
    SymbolIndicators,
    Update,
)
from helios_pipeline_tests.unit.live_reference import (
    assert_updates_match,
    batch,
    decimal,
    live_candles,
    minutes,
)

TOLERANCE_MS = 2_000
LENGTHS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "1h": 60 * MINUTE_MS}


def symbol_state() -> SymbolIndicators:
    return SymbolIndicators([LiveSeries(name, ms) for name, ms in LENGTHS.items()], TOLERANCE_MS)


def test_live_values_follow_final_candles_through_amendments_and_the_outage() -> None:
    # Three real days with the 10 h outage; plus our own gaps: every 37th minute missing.
    frame = minutes("2019-05-14", "2019-05-17")
    frame = frame[[i % 37 != 5 for i in range(len(frame))]]
    state = symbol_state()
    updates: list[Update] = []
    for i, candle in enumerate(live_candles(frame)):
        end = candle.open_ms + MINUTE_MS
        # Every third minute is first emitted with a wrong close, then amended within the
        # tolerance: only the amended version may reach the indicators.
        draft = replace(candle, close=candle.close + 7) if i % 3 == 0 else candle
        state.on_candle(draft)
        early = state.finalize(end)  # the minute just closed is not final yet
        assert all(u.open_ms + LENGTHS[u.timeframe] < end - TOLERANCE_MS for u in early)
        updates += early
        if draft is not candle:
            state.on_candle(replace(candle, version=2, amended=True))
        updates += state.finalize(end + TOLERANCE_MS // 2)
        updates += state.finalize(end + TOLERANCE_MS + 1)  # now final
    last = frame.index[-1].value // 1_000_000
    updates += state.finalize(last + 2 * 3_600_000)  # the last hour closes on the clock
    assert state.skipped == 0
    for timeframe in LENGTHS:
        assert_updates_match([u for u in updates if u.timeframe == timeframe],
                             batch(frame, timeframe))


def test_a_late_version_of_a_final_minute_is_counted_not_used() -> None:
    candles = live_candles(minutes("2019-05-14", "2019-05-14 01:00"))
    state = symbol_state()
    for candle in candles:
        state.on_candle(candle)
        state.finalize(candle.open_ms + MINUTE_MS + TOLERANCE_MS + 1)
    state.on_candle(replace(candles[0], version=2, amended=True, close=candles[0].close + 1))
    assert state.skipped == 1
    assert not state.pending


@pytest.mark.parametrize("length_ms", [0, -MINUTE_MS, MINUTE_MS + 1])
def test_a_series_length_must_be_whole_minutes(length_ms: int) -> None:
    with pytest.raises(ValueError, match="whole number of minutes"):
        LiveSeries("odd", length_ms)


def test_warm_series_continues_exactly_where_the_batch_left_off() -> None:
    frame = minutes("2019-05-16", "2019-05-17")
    bars = [Bar(t.value // 1_000_000, decimal(h), decimal(lo), decimal(c))
            for t, h, lo, c in frame[["high", "low", "close"]].itertuples(name=None)]
    series = LiveSeries("1m", MINUTE_MS)
    warm = series.warm(bars[:1000], [])  # batch over X ...
    assert warm is not None
    updates = [warm] + [u for b in bars[1000:] if (u := series.add(b)) is not None]
    closing = series.close_due(bars[-1].open_ms + MINUTE_MS)  # ... then X+1, X+2, ...
    assert closing is not None
    assert_updates_match([*updates, closing], batch(frame, "1m").iloc[999:])
