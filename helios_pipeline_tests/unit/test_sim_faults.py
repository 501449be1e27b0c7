"""Fault spec of the simulated exchange: grammar, errors, counting, rates and data faults."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, datetime_to_ms
from helios_pipeline.sim.binance.limits import WeightLimiter, request_weight
from helios_pipeline.sim.faults import (
    KINDS,
    FaultInjector,
    FaultSpecError,
    parse_faults,
)
from helios_pipeline.sim.market.feed import MarketFeed

T10 = datetime_to_ms(datetime(2024, 1, 2, 10, 0, tzinfo=UTC))
NOW = T10 + 5 * DAY_MS


def test_request_faults_parse_with_defaults() -> None:
    spec = parse_faults(" latency:ms=50 ; http429 ; ban ; http5xx ; timeout ; malformed:count=2 ;"
                        " truncated:rate=0.5,seed=7,path=klines ; ")
    kinds = [f.kind for f in spec.request_faults]
    assert kinds == ["latency", "http429", "ban", "http5xx", "timeout", "malformed", "truncated"]
    latency, http429, ban, http5xx, timeout, malformed, truncated = spec.request_faults
    assert latency.ms == 50
    assert http429.retry_after == 1
    assert ban.retry_after == 120
    assert http5xx.status == 503
    assert timeout.seconds == 30.0
    assert (malformed.count, malformed.rate, malformed.path) == (2, None, None)
    assert (truncated.rate, truncated.seed, truncated.path) == (0.5, 7, "klines")
    assert spec.data_faults == ()


def test_custom_values_and_empty_spec() -> None:
    spec = parse_faults("http429:retry_after=7;ban:retry_after=30;http5xx:status=504;"
                        "timeout:seconds=0.5")
    assert [f.retry_after for f in spec.request_faults[:2]] == [7, 30]
    assert spec.request_faults[2].status == 504
    assert spec.request_faults[3].seconds == 0.5
    assert parse_faults("").request_faults == ()
    assert parse_faults(" ; ;").data_faults == ()


def test_data_faults_parse_utc_times_and_symbols() -> None:
    spec = parse_faults("missing:symbol=BTCUSDT,start=2024-01-02T10:00,minutes=30;"
                        "spike:symbol=eth/usdt,at=2024-01-02T10:05Z,factor=1.5;"
                        f"broken_ohlc:symbol=SOLUSDT,at={T10 + 59_999}")
    missing, spike, broken = spec.data_faults
    assert (missing.symbol, missing.start_ms, missing.end_ms) == ("BTCUSDT", T10,
                                                                  T10 + 30 * MINUTE_MS)
    assert (spike.symbol, spike.start_ms, spike.factor) == ("ETHUSDT", T10 + 5 * MINUTE_MS,
                                                            Fraction(3, 2))
    assert (broken.symbol, broken.start_ms, broken.end_ms) == ("SOLUSDT", T10, T10 + MINUTE_MS)
    offset = parse_faults("spike:symbol=BTCUSDT,at=2024-01-02T12:00+02:00").data_faults[0]
    assert offset.start_ms == T10
    assert offset.factor == 3


@pytest.mark.parametrize(("spec", "fragment"), [
    ("explode", "unknown kind 'explode'"),
    ("latency:foo=1", "unknown key(s) foo for latency"),
    ("http429:count=1,rate=0.5", "give count= or rate=, not both"),
    ("truncated:rate=1.5", "rate='1.5' must be between 0 and 1"),
    ("latency:ms=fast", "ms='fast' is not a number"),
    ("http5xx:status=404", "status='404' must be between 500 and 599"),
    ("latency:count=0", "count='0' must be between 1"),
    ("missing:start=2024-01-02T10:00", "missing needs symbol"),
    ("spike:symbol=BTCUSDT,at=yesterday", "at='yesterday' is not a UTC time"),
    ("spike:symbol=BTCUSDT,at=2024-01-02T10:00,factor=-2", "factor must be greater than 0"),
    ("missing:symbol=BTCUSDT,start=2024-01-02T10:00,count=2", "data faults are permanent"),
    ("latency:ms", "expected key=value, got 'ms'"),
    ("latency:ms=1,ms=2", "key 'ms' given twice"),
    ("latency:", "':' must be followed by key=value"),
    ("broken_ohlc:symbol=NOTASYMBOL,at=2024-01-02T10:00", "NOTASYMBOL"),
])
def test_bad_specs_name_the_part_and_list_the_kinds(spec: str, fragment: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults(f"latency:ms=5;{spec}")
    message = str(info.value)
    assert fragment in message
    assert repr(spec.strip()) in message
    assert "Valid kinds: " + ", ".join(KINDS) in message


def test_count_is_used_up_and_path_filters() -> None:
    injector = FaultInjector(parse_faults("http429:count=2,path=klines"))
    assert injector.plan("/api/v3/ticker/24hr").response is None
    fired = [injector.plan("/api/v3/klines").response is not None for _ in range(4)]
    assert fired == [True, True, False, False]
    assert injector.fired["http429"] == 2


def test_rate_is_seeded_and_roughly_the_probability() -> None:
    def draws(seed: int) -> list[bool]:
        injector = FaultInjector(parse_faults(f"http5xx:rate=0.3,seed={seed}"))
        return [injector.plan("/api/v3/klines").response is not None for _ in range(2000)]

    first = draws(1)
    assert first == draws(1)
    assert first != draws(2)
    assert 0.25 < sum(first) / len(first) < 0.35


def test_delays_add_up_and_the_first_response_fault_wins() -> None:
    injector = FaultInjector(parse_faults("latency:ms=20;http5xx:count=1;timeout:seconds=0.5;"
                                          "http429:count=1"))
    first = injector.plan("/api/v3/klines")
    assert first.delay_s == pytest.approx(0.52)
    assert first.response is not None
    assert first.response.kind == "http5xx"
    assert first.fired == ["latency", "http5xx", "timeout"]
    second = injector.plan("/api/v3/klines")
    assert second.response is not None
    assert second.response.kind == "http429"  # not consumed by the first request
    assert injector.plan("/api/v3/klines").response is None


def klines(feed: MarketFeed, injector: FaultInjector, start: int, interval: int = MINUTE_MS,
           limit: int = 120) -> list[list[object]]:
    rows = feed.klines("BTCUSDT", interval, start_ms=start, end_ms=None, limit=limit, now_ms=NOW,
                       patches=injector.patches)
    return [json.loads(r) for r in rows]


def test_missing_minutes_are_a_gap_in_1m_and_in_longer_intervals() -> None:
    feed = MarketFeed()
    clean = klines(feed, FaultInjector(), T10 - 60 * MINUTE_MS)
    injector = FaultInjector(parse_faults("missing:symbol=BTCUSDT,start=2024-01-02T10:00,"
                                          "minutes=30"))
    gapped = klines(feed, injector, T10 - 60 * MINUTE_MS)
    opens = [r[0] for r in gapped]
    assert not set(opens) & set(range(T10, T10 + 30 * MINUTE_MS, MINUTE_MS))
    assert len(gapped) == 120
    assert gapped[:60] == clean[:60]
    assert gapped[60] == clean[90]
    hour = klines(feed, injector, T10, 60 * MINUTE_MS, 1)[0]
    assert hour[1] == clean[90][1]  # the hour opens at the first minute that exists
    assert Decimal(str(hour[5])) == sum(Decimal(str(r[5])) for r in clean[90:120])
    assert klines(feed, injector, T10, limit=1) == [clean[90]]
    assert injector.patches("ETHUSDT", T10, T10 + DAY_MS) == ()


def test_spike_and_broken_ohlc_change_one_candle() -> None:
    feed = MarketFeed()
    clean = klines(feed, FaultInjector(), T10, limit=3)
    injector = FaultInjector(parse_faults("spike:symbol=BTCUSDT,at=2024-01-02T10:01,factor=3;"
                                          "broken_ohlc:symbol=BTCUSDT,at=2024-01-02T10:02"))
    changed = klines(feed, injector, T10, limit=3)
    assert changed[0] == clean[0]
    spiked, before = changed[1], clean[1]
    assert Decimal(str(spiked[2])) == Decimal(str(before[2])) * 3
    assert Decimal(str(spiked[4])) == Decimal(str(before[4])) * 3
    assert spiked[1] == before[1]
    assert spiked[5:] == before[5:]
    broken = changed[2]
    o, h, lo, c = (Decimal(str(x)) for x in broken[1:5])
    assert h < max(o, c)
    assert lo <= h
    assert broken[1] == clean[2][1]


def test_weights_follow_binance() -> None:
    assert request_weight("/api/v3/klines", {}) == 2
    assert request_weight("/api/v3/exchangeInfo", {}) == 20
    assert request_weight("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}) == 2
    assert request_weight("/api/v3/ticker/24hr", {}) == 80
    assert request_weight("/api/v3/ticker/24hr", {"symbols": json.dumps(["A"] * 21)}) == 40
    assert request_weight("/api/v3/depth", {"limit": "5000"}) == 250
    assert request_weight("/api/v3/trades", {}) == 25


def test_limiter_answers_429_then_bans_a_client_that_keeps_going() -> None:
    clock = [10 * MINUTE_MS + 45_000]
    limiter = WeightLimiter(limit=10, clock_ms=lambda: clock[0], ban_after=2)
    assert [limiter.admit(4).status for _ in range(2)] == [200, 200]
    over = limiter.admit(4)
    assert (over.status, over.used, over.retry_after_s) == (429, 12, 15)
    assert limiter.admit(1).status == 429
    banned = limiter.admit(1)
    assert (banned.status, banned.retry_after_s) == (418, 120)
    clock[0] += 60_000
    assert limiter.admit(1).status == 418
    clock[0] += 61_000
    assert limiter.admit(1).status == 200
    assert limiter.used() == 1
