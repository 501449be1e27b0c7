"""Market-stream pieces of the simulated exchange: payloads, names, control frames, trade plans
and the runtime state of the websocket faults (no sockets here; see integration tests)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.timeframe import MINUTE_MS, datetime_to_ms
from helios_pipeline.sim.binance import quotes
from helios_pipeline.sim.faults import KINDS, FaultSpecError, parse_faults
from helios_pipeline.sim.market.candles import Kline
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.trades import partial_kline
from helios_pipeline.sim.wire import to_units
from helios_pipeline.sim.ws.conn import WsConfig, WsStats
from helios_pipeline.sim.ws.faults import WsFaultState, malformed_frame
from helios_pipeline.sim.ws.payloads import (
    StreamName,
    agg_trade_event,
    book_ticker_event,
    in_micros,
    kline_event,
    mini_ticker_event,
    parse_stream,
    ticker_event,
    trade_event,
)
from helios_pipeline.sim.ws.plan import RESAMPLED_ID_STRIDE, live_minute
from helios_pipeline.sim.ws.protocol import (
    ControlError,
    parse_control,
    property_params,
    result,
    stream_params,
)
from helios_pipeline_tests.conftest import EXCERPT

MINUTE = datetime_to_ms(datetime(2024, 2, 4, 15, 23, tzinfo=UTC))
NOW = MINUTE + 31_234
DECIMAL = re.compile(r"^\d+\.\d{8}$")
SYMBOLS = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHBTC"}
FEED = MarketFeed()

# Field lists of BINANCE_API_NOTES.txt (WEBSOCKET section), in Binance's order.
NOTES_FIELDS = {
    "trade": ["e", "E", "s", "t", "p", "q", "T", "m", "M"],
    "aggTrade": ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"],
    "kline": ["e", "E", "s", "k"],
    "kline.k": ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q",
                "B"],
    "24hrTicker": ["e", "E", "s", "p", "P", "w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l",
                   "v", "q", "O", "C", "F", "L", "n"],
}
INTS = {
    "trade": {"E", "t", "T"}, "aggTrade": {"E", "a", "f", "l", "T"},
    "kline": {"t", "T", "f", "L", "n"}, "bookTicker": {"u"}, "24hrMiniTicker": {"E"},
}
TEXT = {"e", "s", "i"}


def ws_fixture(method: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(EXCERPT.read_text())["ws"][method][0]
    return case


def assert_binance_types(event: dict[str, Any], kind: str) -> None:
    """Times/ids are ints, flags bools, names strings, every other field an 8-place decimal."""
    for key, value in event.items():
        if key in INTS[kind]:
            assert type(value) is int, key
        elif key in ("m", "M", "x"):
            assert type(value) is bool, key
        elif key in TEXT or (kind == "kline" and key == "B"):
            assert isinstance(value, str), key
        else:
            assert DECIMAL.match(str(value)), (key, value)
            assert isinstance(value, str), key


def rest_kline(symbol: str, minute_ms: int) -> Kline:
    block = FEED.day_1m(symbol, minute_ms // 86_400_000)
    return block.kline(int(np.searchsorted(block.open_ms, minute_ms)))


# ----------------------------------------------------------------------------- payloads


def test_book_ticker_has_the_fixture_fields_and_types() -> None:
    golden = ws_fixture("watchBidsAsks")
    sample = golden["messages"][1]
    ours = book_ticker_event(quotes.book_ticker_json(FEED, "BTCUSDT", NOW), 98_494_969_448)
    assert list(ours) == list(sample)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in sample.items()}
    assert_binance_types(ours, "bookTicker")
    for golden_event in golden["messages"][1:]:
        assert_binance_types(golden_event, "bookTicker")
    assert to_units(ours["b"]) < to_units(ours["a"])
    assert golden["sentMessages"][0]["params"] == ["btcusdt@bookTicker"]
    assert parse_stream("btcusdt@bookTicker", SYMBOLS) == StreamName(
        "btcusdt@bookTicker", "BTCUSDT", "bookTicker")


def test_mini_ticker_has_the_fixture_fields_and_types() -> None:
    sample = ws_fixture("watchTicker")["messages"][1]
    ours = mini_ticker_event(quotes.ticker_24hr_json(FEED, "BTCUSDT", NOW), NOW + 3)
    assert list(ours) == list(sample)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in sample.items()}
    assert_binance_types(ours, "24hrMiniTicker")
    assert_binance_types(sample, "24hrMiniTicker")
    assert ours["E"] == NOW + 3


def test_subscribe_reply_and_request_match_the_fixture() -> None:
    golden = ws_fixture("watchTicker")
    assert result(None, 1) == golden["messages"][0]
    control = parse_control(json.dumps(golden["sentMessages"][0]))
    assert (control.method, stream_params(control), control.request_id) == (
        "SUBSCRIBE", ["btcusdt@miniTicker"], 1)


def test_trade_agg_kline_and_ticker_payloads_follow_the_notes() -> None:
    k = rest_kline("BTCUSDT", MINUTE)
    trade = trade_event("BTCUSDT", NOW, 7, k.open, 150_000, NOW - 1, True)
    agg = agg_trade_event("BTCUSDT", NOW, (3, k.close, 10, 7, 9, NOW - 2, False))
    kline = kline_event("BTCUSDT", NOW, "1m", k, 100, 100 + k.trades - 1, False)
    ticker = ticker_event(quotes.ticker_24hr_json(FEED, "BTCUSDT", NOW), NOW)
    assert list(trade) == NOTES_FIELDS["trade"]
    assert list(agg) == NOTES_FIELDS["aggTrade"]
    assert list(kline) == NOTES_FIELDS["kline"]
    assert list(kline["k"]) == NOTES_FIELDS["kline.k"]
    assert list(ticker) == NOTES_FIELDS["24hrTicker"]
    assert_binance_types(trade, "trade")
    assert_binance_types(agg, "aggTrade")
    assert_binance_types(kline["k"], "kline")
    assert (trade["e"], agg["e"], kline["e"], ticker["e"]) == ("trade", "aggTrade", "kline",
                                                               "24hrTicker")
    assert (trade["p"], trade["q"], trade["M"]) == (f"{k.open / 1e8:.8f}", "0.00150000", True)
    assert (agg["a"], agg["f"], agg["l"], agg["T"]) == (3, 7, 9, NOW - 2)
    assert kline["k"]["t"] == MINUTE
    assert kline["k"]["T"] == MINUTE + MINUTE_MS - 1
    assert (kline["k"]["i"], kline["k"]["n"], kline["k"]["x"], kline["k"]["B"]) == (
        "1m", k.trades, False, "0")
    assert isinstance(ticker["P"], str)
    assert isinstance(ticker["n"], int)
    assert ticker["C"] - ticker["O"] == 86_400_000


def test_microsecond_time_unit_scales_every_time_field() -> None:
    k = rest_kline("ETHUSDT", MINUTE)
    trade = in_micros(trade_event("ETHUSDT", NOW, 1, 2, 3, NOW - 5, False), NOW * 1000 + 417)
    kline = in_micros(kline_event("ETHUSDT", NOW, "1m", k, 1, 2, True), NOW * 1000 + 1)
    ticker = in_micros(ticker_event(quotes.ticker_24hr_json(FEED, "ETHUSDT", NOW), NOW),
                       NOW * 1000)
    book = book_ticker_event(quotes.book_ticker_json(FEED, "ETHUSDT", NOW), 5)
    assert (trade["E"], trade["T"], trade["t"]) == (NOW * 1000 + 417, (NOW - 5) * 1000, 1)
    assert (kline["k"]["t"], kline["k"]["T"]) == (MINUTE * 1000, (MINUTE + MINUTE_MS) * 1000 - 1)
    assert (ticker["O"], ticker["C"]) == ((NOW - 86_400_000) * 1000, NOW * 1000)
    assert in_micros(book, 1) is book


@pytest.mark.parametrize(("name", "expected"), [
    ("btcusdt@trade", StreamName("btcusdt@trade", "BTCUSDT", "trade")),
    ("ethbtc@aggTrade", StreamName("ethbtc@aggTrade", "ETHBTC", "aggTrade")),
    ("solusdt@kline_1m", StreamName("solusdt@kline_1m", "SOLUSDT", "kline", "1m")),
    ("btcusdt@kline_4h", StreamName("btcusdt@kline_4h", "BTCUSDT", "kline", "4h")),
    ("btcusdt@miniTicker", StreamName("btcusdt@miniTicker", "BTCUSDT", "miniTicker")),
    ("BTCUSDT@trade", None),  # symbols are lowercase
    ("btcusdt@Trade", None),
    ("btcusdt@depth", None),
    ("btcusdt@kline_7m", None),
    ("btcusdt@kline", None),
    ("dogeusdt@trade", None),  # not listed in this test
    ("btcusdt", None),
    ("@trade", None),
    ("btc-usdt@trade", None),
    (42, None),
])
def test_stream_names(name: object, expected: StreamName | None) -> None:
    assert parse_stream(name, SYMBOLS) == expected


# ----------------------------------------------------------------------------- control frames


@pytest.mark.parametrize(("frame", "code", "fragment", "request_id"), [
    ("{", 3, "Invalid JSON: expected value at line 1 column 2", None),
    ("", 3, "Invalid JSON", None),
    ("NaN", 3, "Invalid JSON", None),
    ("[" * 50_000, 3, "Invalid JSON", None),
    ("[1]", 2, "invalid type: sequence, expected struct Request", None),
    ('"SUBSCRIBE"', 2, 'invalid type: string "SUBSCRIBE"', None),
    ('{"params":[],"id":4}', 2, "missing field `method`", 4),
    ('{"method":"PING","id":5}', 2, "unknown variant string \"PING\", expected one of "
                                    "`SUBSCRIBE`, `UNSUBSCRIBE`", 5),
    ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":-1.5}', 2,
     "request ID must be an unsigned integer", None),
    ('{"method":"SUBSCRIBE","params":[],"id":true}', 2, "request ID must be", None),
    ('{"method":"SUBSCRIBE","params":[],"id":"has space"}', 2, "request ID must be", None),
    (f'{{"method":"SUBSCRIBE","params":[],"id":{2**64}}}', 2, "request ID must be", None),
    ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":6}', 2, "expected a sequence", 6),
])
def test_bad_control_frames_get_binance_errors(frame: str, code: int, fragment: str,
                                               request_id: object) -> None:
    with pytest.raises(ControlError) as caught:
        parse_control(frame)
    reply = caught.value.reply()
    assert reply["error"]["code"] == code
    assert fragment in reply["error"]["msg"]
    assert reply["id"] == request_id
    assert list(reply) == ["error", "id"]


def test_control_ids_params_and_properties() -> None:
    sub = parse_control('{"method":"SUBSCRIBE","params":["a@trade","a@trade","b@trade"],'
                        '"id":"abc123"}')
    assert (sub.request_id, stream_params(sub)) == ("abc123", ["a@trade", "b@trade"])
    assert parse_control('{"method":"LIST_SUBSCRIPTIONS","id":null}').request_id is None
    assert parse_control('{"method":"UNSUBSCRIBE","params":null,"id":9}').params == []
    with pytest.raises(ControlError, match="invalid stream"):
        stream_params(parse_control('{"method":"SUBSCRIBE","params":[1],"id":1}'))
    setter = parse_control('{"method":"SET_PROPERTY","params":["combined",true],"id":5}')
    assert property_params(setter, True) == ("combined", True)
    getter = parse_control('{"method":"GET_PROPERTY","params":["combined"],"id":2}')
    assert property_params(getter, False) == ("combined", False)
    for params, code in ((["combined", 1], 1), (["speed", True], 0), ([5, True], 2),
                         (["combined", True, 3], 2), (["combined"], 2)):
        frame = json.dumps({"method": "SET_PROPERTY", "params": params, "id": 8})
        with pytest.raises(ControlError) as caught:
            property_params(parse_control(frame), True)
        assert (caught.value.code, caught.value.request_id) == (code, 8)


# ----------------------------------------------------------------------------- trade plans


def test_market_rate_minute_is_the_rest_tape() -> None:
    plan = live_minute(FEED, "SOLUSDT", MINUTE)
    assert plan is not None
    k = rest_kline("SOLUSDT", MINUTE)
    assert plan.closed() == k
    assert len(plan) == k.trades
    rest_aggs = FEED.agg_trades("SOLUSDT", start_ms=MINUTE, end_ms=MINUTE + MINUTE_MS - 1,
                                from_id=None, limit=1000, now_ms=MINUTE + MINUTE_MS)
    ours = [{"a": a, "p": f"{p / 1e8:.8f}", "q": f"{q / 1e8:.8f}", "f": f, "l": la, "T": t,
             "m": m, "M": True} for a, p, q, f, la, t, m in plan.aggs.rows(0, len(plan.aggs))]
    assert ours == rest_aggs
    fills = FEED.recent_trades("SOLUSDT", min(1000, k.trades), MINUTE + MINUTE_MS - 1)
    tail = plan.trades.rows(len(plan) - len(fills), len(plan))
    assert [(f["id"], to_units(f["price"]), to_units(f["qty"]), f["time"], f["isBuyerMaker"])
            for f in fills] == [(t, p, q, tm, m) for t, p, q, _, _, tm, m in tail]
    assert plan.aggs_done(len(plan)) == len(plan.aggs)
    block = FEED.day_1m("SOLUSDT", MINUTE // 86_400_000)
    tape = FEED.tape("SOLUSDT", block, int(np.searchsorted(block.open_ms, MINUTE)))
    for at in (MINUTE, MINUTE + 1, MINUTE + 17_000, MINUTE + 45_500, MINUTE + 59_999):
        n = plan.count_until(at)
        assert plan.partial(n) == partial_kline(k, tape, at)
    assert plan.ids(0) == (-1, -1)


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.01, 3000.0), symbol=st.sampled_from(["BTCUSDT", "ETHBTC", "SOLUSDT"]),
       minute=st.integers(0, 2000))
def test_fixed_rate_minutes_keep_ohlc_and_volume(rate: float, symbol: str, minute: int) -> None:
    start = MINUTE + minute * MINUTE_MS
    plan = live_minute(FEED, symbol, start, rate)
    natural = live_minute(FEED, symbol, start)
    assert plan is not None
    assert natural is not None
    k, t = plan.kline, plan.trades
    assert (int(t.price[0]), int(t.price.max()), int(t.price.min()), int(t.price[-1])) == (
        k.open, k.high, k.low, k.close)
    assert int(t.qty.sum()) == k.volume
    assert bool((t.qty > 0).all())
    target = max(1, round(rate * 60))
    if target < len(natural):  # merged; the open, high, low and close fills always lead
        assert len(plan) == target or (target < 4 and len(plan) <= 4)
    else:  # split; a fill of one 1e-8 unit cannot be cut
        assert len(plan) == target or (len(plan) < target and bool((t.qty == 1).any()))
    assert bool((np.diff(t.time) >= 0).all())
    assert start <= t.time[0] <= t.time[-1] < start + 60_000
    assert bool((np.diff(t.id) == 1).all())
    assert t.id[0] == start // MINUTE_MS * RESAMPLED_ID_STRIDE
    assert plan.partial(len(plan)).close == k.close
    assert plan.partial(len(plan)).volume == k.volume


def test_no_plan_outside_the_market() -> None:
    assert live_minute(FEED, "BTCUSDT", datetime_to_ms(datetime(2101, 1, 1, tzinfo=UTC))) is None


# ----------------------------------------------------------------------------- faults


def test_ws_fault_kinds_parse() -> None:
    spec = parse_faults("ws_disconnect:after_s=1,every_s=2,count=3,code=4000;ws_stall:seconds=2;"
                        "ws_burst:ticks=10,symbol=btc/usdt;ws_malformed:rate=0.5,seed=3;"
                        "ws_refuse:seconds=1.5,after_s=0.5;ws_disconnect;latency:ms=5")
    kinds = [f.kind for f in spec.ws_faults]
    assert kinds == ["ws_disconnect", "ws_stall", "ws_burst", "ws_malformed", "ws_refuse",
                     "ws_disconnect"]
    disconnect, stall, burst, malformed, refuse, plain = spec.ws_faults
    assert (disconnect.after_s, disconnect.every_s, disconnect.count, disconnect.code) == (
        1.0, 2.0, 3, 4000)
    assert (stall.seconds, burst.ticks, burst.symbol) == (2.0, 10, "BTCUSDT")
    assert (malformed.rate, malformed.seed, refuse.seconds, refuse.after_s) == (0.5, 3, 1.5, 0.5)
    assert (plain.after_s, plain.every_s, plain.count, plain.code) == (0.0, None, None, 1001)
    assert [f.kind for f in spec.request_faults] == ["latency"]
    assert {"ws_disconnect", "ws_stall", "ws_burst", "ws_malformed", "ws_refuse"} <= set(KINDS)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("ws_stall:ticks=3", "unknown key(s) ticks for ws_stall"),
    ("ws_malformed:count=1,rate=0.5", "give count= or rate=, not both"),
    ("ws_disconnect:every_s=0", "every_s='0' must be between 0.05"),
    ("ws_burst:ticks=many", "ticks='many' is not a number"),
    ("ws_burst:symbol=!!", "ws_burst"),
    ("ws_refuse:path=/ws", "unknown key(s) path"),
])
def test_bad_ws_faults_are_explained(spec: str, fragment: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults(spec)
    assert fragment in str(caught.value)
    assert "ws_refuse" in str(caught.value)


def test_ws_fault_windows_and_schedules() -> None:
    spec = parse_faults("ws_refuse:seconds=1,after_s=0.5;ws_stall:seconds=2,after_s=3;"
                        "ws_disconnect:after_s=1,every_s=2,count=3;ws_burst:ticks=7,after_s=4")
    fired: Counter[str] = Counter()
    state = WsFaultState(spec.ws_faults, 100.0, fired)
    assert [state.refusing(t) for t in (100.2, 100.6, 101.4, 101.6)] == [False, True, True, False]
    assert [state.stalled(t) for t in (102.9, 103.0, 104.99, 105.0)] == [False, True, True, False]
    assert state.stall_end(104.0) == 105.0
    assert state.stall_end(106.0) is None
    assert state.due_disconnects(100.9) == []
    (index, left, code), = state.due_disconnects(101.0)
    assert (left, code) == (3, 1001)
    state.closed(index, 2)
    assert state.due_disconnects(102.5) == []
    assert state.due_disconnects(103.0) == [(index, 1, 1001)]
    state.closed(index, 1)
    assert state.due_disconnects(200.0) == []
    assert state.due_bursts(103.9) == []
    assert [b.ticks for b in state.due_bursts(104.0)] == [7]
    assert state.due_bursts(105.0) == []
    assert fired == Counter({"ws_refuse": 2, "ws_stall": 1, "ws_disconnect": 3})


def test_malformed_frames_count_and_variants() -> None:
    frame = json.dumps({"e": "trade", "E": 1, "s": "BTCUSDT", "t": 5, "p": "1.50000000",
                        "q": "2.00000000", "T": 1, "m": True, "M": True})
    fired: Counter[str] = Counter()
    state = WsFaultState(parse_faults("ws_malformed:count=3").ws_faults, 0.0, fired)
    out = [state.malform(frame) for _ in range(5)]
    assert all(o is not None for o in out[:3])
    assert out[3:] == [None, None]
    assert fired["ws_malformed"] == 3
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|Extra"):
        json.loads(malformed_frame(frame, 0))
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        json.loads(malformed_frame(frame, 1))
    wrong = json.loads(malformed_frame(frame, 2))
    assert (wrong["e"], wrong["s"], wrong["p"], wrong["t"], wrong["m"]) == (
        "trade", "BTCUSDT", 1.5, "5", "true")
    always = WsFaultState(parse_faults("ws_malformed").ws_faults, 0.0, Counter())
    assert all(always.malform(frame) for _ in range(20))
    sometimes = WsFaultState(parse_faults("ws_malformed:rate=0.3,seed=1").ws_faults, 0.0,
                             Counter())
    hits = sum(sometimes.malform(frame) is not None for _ in range(1000))
    assert 230 < hits < 370


def test_ws_config_rates_and_stats_reset() -> None:
    config = WsConfig(trades_per_second=3.0, symbol_trades_per_second={"ETH/USDT": 250.0})
    assert (config.rate_for("ETHUSDT"), config.rate_for("BTCUSDT")) == (250.0, 3.0)
    assert WsConfig().rate_for("BTCUSDT") is None
    for bad in (0.0, -1.0, 1e6):
        with pytest.raises(ValueError, match="trades_per_second"):
            WsConfig(trades_per_second=bad)
    stats = WsStats(messages_sent=5, last_send_us=9)
    stats.disconnects["fault"] += 2
    assert stats.snapshot()["disconnects_forced"] == 2
    stats.reset()
    assert stats.snapshot()["messages_sent"] == 0
    assert stats.snapshot()["disconnects_forced"] == 0
