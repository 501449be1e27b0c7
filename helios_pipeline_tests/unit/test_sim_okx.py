"""The simulated OKX venue: instruments, wire format, pagination, venue basis, divergence fault."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import aiohttp
import pytest

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, datetime_to_ms
from helios_pipeline.sim.faults import FaultInjector, FaultSpecError, parse_faults
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.okx.params import RequestRateLimiter
from helios_pipeline.sim.okx.venue import (
    MAX_BASIS,
    OkxVenue,
    basis_factor,
    candle_rows,
    okx_instrument,
    okx_number,
    symbol_of_inst_id,
)
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.wire import SCALE

DAY = datetime_to_ms(datetime(2024, 3, 1, tzinfo=UTC))
NOW = DAY + 2 * DAY_MS + 13 * 3_600_000 + 17 * MINUTE_MS + 25_000  # 2024-03-03T13:17:25Z
NOW_MINUTE = NOW // MINUTE_MS * MINUTE_MS
T10 = DAY + 10 * 3_600_000


@pytest.fixture(scope="module")
def okx() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, venue="okx", now_ms=lambda: NOW) as server:
        yield server


@pytest.fixture(scope="module")
def venue() -> OkxVenue:
    return OkxVenue(MarketFeed())


def get(server: SimExchangeServer, path: str, **query: object) -> tuple[int, Any]:
    async def main() -> tuple[int, Any]:
        params = {k: str(v) for k, v in query.items()}
        async with aiohttp.ClientSession() as session, session.get(
                f"{server.base_url}{path}", params=params) as response:
            return response.status, json.loads(await response.read())

    return asyncio.run(main())


def candles(server: SimExchangeServer, endpoint: str = "history-candles",
            **query: object) -> list[list[str]]:
    status, body = get(server, f"/api/v5/market/{endpoint}", instId="BTC-USDT", **query)
    assert status == 200, body
    assert (body["code"], body["msg"]) == ("0", "")
    rows: list[list[str]] = body["data"]
    return rows


def times(rows: list[list[str]]) -> list[int]:
    return [int(r[0]) for r in rows]


# ----------------------------------------------------------------------------- instruments


def test_okx_numbers_have_no_trailing_zeros() -> None:
    assert okx_number(6_000_010_000_000) == "60000.1"
    assert okx_number(6_000_000_000_000) == "60000"
    assert okx_number(1) == "0.00000001"
    assert okx_number(0) == "0"
    assert okx_number(10 * SCALE) == "10"


def test_instruments_use_okx_ticks_lots_and_ids() -> None:
    btc, eth, sol = (okx_instrument(s) for s in ("BTCUSDT", "ETH/USDT", "SOLUSDT"))
    assert (btc.inst_id, btc.symbol, btc.base, btc.quote) == ("BTC-USDT", "BTCUSDT", "BTC",
                                                               "USDT")
    assert [okx_number(u) for u in (btc.tick_units, btc.lot_units, btc.min_units)] == [
        "0.1", "0.00000001", "0.00001"]
    assert okx_number(eth.tick_units) == "0.01"
    assert okx_number(eth.min_units) == "0.0001"
    assert okx_number(sol.tick_units) == "0.01"
    assert 0.3 <= btc.volume_share <= 0.6
    assert symbol_of_inst_id("ETH-BTC") == "ETHBTC"


def test_instruments_endpoint_lists_live_spot_instruments(okx: SimExchangeServer) -> None:
    status, body = get(okx, "/api/v5/public/instruments", instType="SPOT")
    assert status == 200
    assert body["code"] == "0"
    by_id = {i["instId"]: i for i in body["data"]}
    assert len(by_id) >= 60
    btc = by_id["BTC-USDT"]
    assert {k: btc[k] for k in ("instType", "baseCcy", "quoteCcy", "tickSz", "lotSz", "minSz",
                                "state")} == {
        "instType": "SPOT", "baseCcy": "BTC", "quoteCcy": "USDT", "tickSz": "0.1",
        "lotSz": "0.00000001", "minSz": "0.00001", "state": "live"}
    assert all(i["instType"] == "SPOT" and i["state"] == "live" for i in body["data"])
    assert get(okx, "/api/v5/public/instruments", instType="SWAP")[1]["data"] == []
    one = get(okx, "/api/v5/public/instruments", instType="SPOT", instId="ETH-BTC")[1]["data"]
    assert [i["instId"] for i in one] == ["ETH-BTC"]


def test_time_and_error_envelopes(okx: SimExchangeServer) -> None:
    assert get(okx, "/api/v5/public/time") == (200, {"code": "0", "msg": "",
                                                     "data": [{"ts": str(NOW)}]})
    cases = [
        ("/api/v5/public/instruments", {}, "50014", "instType"),
        ("/api/v5/public/instruments", {"instType": "STOCK"}, "51000", "instType"),
        ("/api/v5/market/ticker", {}, "50014", "instId"),
        ("/api/v5/market/ticker", {"instId": "NOPE-USDT"}, "51001", "Instrument ID"),
        ("/api/v5/market/ticker", {"instId": "garbage"}, "51001", "Instrument ID"),
        ("/api/v5/market/candles", {"instId": "BTC-USDT", "bar": "1h"}, "51000", "bar"),
        ("/api/v5/market/candles", {"instId": "BTC-USDT", "after": "x"}, "51000", "after"),
        ("/api/v5/market/candles", {"instId": "BTC-USDT", "limit": "0"}, "51000", "limit"),
    ]
    for path, query, code, word in cases:
        status, body = get(okx, path, **query)
        assert status == 400, (path, query)
        assert body["code"] == code
        assert word in body["msg"]
        assert body["data"] == []


def test_rate_limit_counts_requests_per_endpoint_in_two_second_windows() -> None:
    clock = [10_000]
    limiter = RequestRateLimiter(lambda: clock[0])
    path = "/api/v5/market/history-candles"
    assert all(limiter.admit(path) for _ in range(20))
    assert not limiter.admit(path)
    assert limiter.admit("/api/v5/market/candles")  # another endpoint, another budget
    clock[0] += 2000
    assert limiter.admit(path)
    assert limiter.rejected == 1
    assert all(RequestRateLimiter(lambda: 0, enabled=False).admit(path) for _ in range(50))


# ----------------------------------------------------------------------------- candles


def test_candles_are_okx_rows_newest_first(okx: SimExchangeServer) -> None:
    rows = candles(okx, after=T10 + 5 * MINUTE_MS, limit=5)
    assert times(rows) == [T10 + i * MINUTE_MS for i in (4, 3, 2, 1, 0)]
    for row in rows:
        assert len(row) == 9
        assert all(isinstance(x, str) for x in row)
        o, h, low, c, vol, vol_ccy, vol_quote = (Decimal(x) for x in row[1:8])
        assert low <= min(o, c) <= max(o, c) <= h
        assert all(abs(p.as_tuple().exponent) <= 1 for p in (o, h, low, c))  # tickSz 0.1
        assert vol > 0
        assert vol_ccy == vol_quote  # spot: both in the quote currency
        assert low * vol <= vol_ccy <= h * vol
        assert row[8] == "1"


def test_after_and_before_are_exclusive_and_the_newest_come_first(
        okx: SimExchangeServer) -> None:
    window = times(candles(okx, after=T10 + 10 * MINUTE_MS, before=T10, limit=100))
    assert window == [T10 + i * MINUTE_MS for i in range(9, 0, -1)]
    capped = times(candles(okx, after=T10 + 10 * MINUTE_MS, before=T10 - 200 * MINUTE_MS,
                           limit=5))
    assert capped == [T10 + i * MINUTE_MS for i in range(9, 4, -1)]  # newest of the window
    older = times(candles(okx, after=T10, limit=3))
    assert older == [T10 - i * MINUTE_MS for i in (1, 2, 3)]
    latest = times(candles(okx, before=T10, limit=3))  # "before" alone: the latest bars
    assert latest == [NOW_MINUTE - i * MINUTE_MS for i in (0, 1, 2)]
    assert times(candles(okx, limit=2)) == latest[:2]


def test_limits_and_the_live_candles_window(okx: SimExchangeServer) -> None:
    assert len(candles(okx, after=T10, limit=300)) == 100  # history-candles caps at 100
    assert len(candles(okx, "candles", limit=1000)) == 300  # candles caps at 300
    assert len(candles(okx, "history-candles")) == 100  # default limit
    live = candles(okx, "candles", limit=300, after=NOW_MINUTE - 1300 * MINUTE_MS)
    assert times(live)[-1] == NOW_MINUTE - 1439 * MINUTE_MS  # the oldest of the latest 1440
    assert candles(okx, "candles", after=NOW_MINUTE - 1440 * MINUTE_MS) == []
    assert candles(okx, "history-candles", after=NOW_MINUTE - 1440 * MINUTE_MS, limit=1)


def test_the_open_candle_is_unconfirmed(okx: SimExchangeServer) -> None:
    newest, previous = candles(okx, "candles", limit=2)
    assert (int(newest[0]), newest[8]) == (NOW_MINUTE, "0")
    assert (int(previous[0]), previous[8]) == (NOW_MINUTE - MINUTE_MS, "1")
    hour = candles(okx, "candles", bar="1H", limit=1)[0]
    assert (int(hour[0]), hour[8]) == (NOW // 3_600_000 * 3_600_000, "0")


def test_long_bars_align_to_hong_kong_or_utc_and_add_up(okx: SimExchangeServer) -> None:
    hk = candles(okx, bar="1D", after=DAY + DAY_MS, limit=1)[0]
    utc = candles(okx, bar="1Dutc", after=DAY + DAY_MS, limit=1)[0]
    assert int(hk[0]) == DAY + 16 * 3_600_000  # 2024-03-02 00:00 in Hong Kong
    earlier = candles(okx, bar="1D", after=DAY + 1, limit=1)[0]
    assert int(earlier[0]) == DAY - 8 * 3_600_000  # 2024-03-01 00:00 in Hong Kong
    assert int(utc[0]) == DAY
    minutes = candles(okx, after=DAY + 60 * MINUTE_MS, before=DAY - 1, limit=100)
    hour = candles(okx, bar="1H", after=DAY + 1, limit=1)[0]
    assert int(hour[0]) == DAY
    assert hour[1] == minutes[-1][1]
    assert hour[4] == minutes[0][4]
    assert Decimal(hour[2]) == max(Decimal(r[2]) for r in minutes)
    assert Decimal(hour[5]) == sum(Decimal(r[5]) for r in minutes)


def test_gaps_are_skipped_and_older_bars_fill_the_page(venue: OkxVenue) -> None:
    injector = FaultInjector(parse_faults("missing:symbol=BTCUSDT,start=2024-03-01T09:00,"
                                          "minutes=60"))
    inst = okx_instrument("BTCUSDT")
    page = venue.window(inst, "1m", after=T10, before=None, limit=10, now_ms=NOW,
                        patches=injector.patches)
    assert page.open_ms.tolist() == [T10 - 60 * MINUTE_MS - i * MINUTE_MS
                                     for i in range(10, 0, -1)]


# ----------------------------------------------------------------------------- venue basis


def test_basis_is_small_stable_per_day_and_differs_between_days() -> None:
    factors = [basis_factor("BTCUSDT", DAY // DAY_MS + i) for i in range(30)]
    assert all(abs(f - 1) <= MAX_BASIS for f in factors)
    assert len(set(factors)) == 30
    assert basis_factor("BTCUSDT", DAY // DAY_MS) == factors[0]


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ETHBTC"])
def test_okx_tracks_binance_minute_by_minute(venue: OkxVenue, symbol: str) -> None:
    inst = okx_instrument(symbol)
    day = DAY // DAY_MS
    binance = venue.feed.day_1m(symbol, day).cols
    okx = venue.minutes(inst, day, NOW).cols
    assert okx["open_ms"].tolist() == binance["open_ms"].tolist()
    ratios = [int(o) / int(b) for o, b in zip(okx["close"], binance["close"], strict=True)]
    assert max(abs(r - 1) for r in ratios) < 0.001
    assert any(r != 1 for r in ratios)  # a venue basis, not a copy
    assert all(int(c) % inst.tick_units == 0 for c in okx["close"])
    assert all(int(v) % inst.lot_units == 0 for v in okx["volume"])
    share = sum(okx["volume"].tolist()) / sum(binance["volume"].tolist())
    assert share == pytest.approx(inst.volume_share, rel=0.01)


def test_candle_rows_encode_the_venue_block(venue: OkxVenue) -> None:
    inst = okx_instrument("ETHUSDT")
    block = venue.window(inst, "5m", after=T10 + 1, before=T10 - 15 * MINUTE_MS, limit=10,
                         now_ms=NOW)
    rows = candle_rows(block, 5 * MINUTE_MS, NOW)
    assert times(rows) == [T10, T10 - 5 * MINUTE_MS, T10 - 10 * MINUTE_MS]
    assert rows[0][4] == okx_number(int(block.cols["close"][-1]))


# ----------------------------------------------------------------------------- divergence


def test_divergence_fault_parses_with_window_and_factor() -> None:
    fault = parse_faults("divergence:symbol=btc/usdt,start=2024-03-01T10:00,minutes=30,"
                         "factor=1.08").data_faults[0]
    assert (fault.kind, fault.symbol, fault.start_ms, fault.end_ms) == (
        "divergence", "BTCUSDT", T10, T10 + 30 * MINUTE_MS)
    assert fault.factor == Fraction(27, 25)
    one = parse_faults("divergence:symbol=BTCUSDT,start=2024-03-01T10:00,factor=0.9")
    assert one.data_faults[0].end_ms == T10 + MINUTE_MS
    for bad, fragment in (("divergence:symbol=BTCUSDT,start=2024-03-01T10:00", "needs factor"),
                          ("divergence:symbol=BTCUSDT,at=2024-03-01T10:00,factor=2",
                           "unknown key(s) at"),
                          ("divergence:symbol=BTCUSDT,start=2024-03-01T10:00,factor=-1",
                           "greater than 0"),
                          ("divergence:symbol=BTCUSDT,start=2024-03-01T10:00,factor=x",
                           "not a number")):
        with pytest.raises(FaultSpecError, match="divergence"):
            parse_faults(bad)
        with pytest.raises(FaultSpecError) as info:
            parse_faults(bad)
        assert fragment in str(info.value)


def test_divergence_applies_only_inside_its_window(venue: OkxVenue) -> None:
    inst = okx_instrument("BTCUSDT")
    spec = "divergence:symbol=BTCUSDT,start=2024-03-01T10:00,minutes=30,factor=1.08"
    injector = FaultInjector(parse_faults(spec))

    def hours(patches: Any) -> Any:
        return venue.window(inst, "1m", after=T10 + 120 * MINUTE_MS, before=T10 - 61 * MINUTE_MS,
                            limit=300, now_ms=NOW, patches=patches).cols

    clean, diverged = hours(FaultInjector().patches), hours(injector.patches)
    assert diverged["open_ms"].tolist() == clean["open_ms"].tolist()
    for i, open_ms in enumerate(clean["open_ms"].tolist()):
        for name in ("open", "high", "low", "close"):
            ratio = int(diverged[name][i]) / int(clean[name][i])
            if T10 <= open_ms < T10 + 30 * MINUTE_MS:
                assert ratio == pytest.approx(1.08, abs=1e-5), (open_ms, name)
            else:
                assert ratio == 1, (open_ms, name)
        assert int(diverged["volume"][i]) == int(clean["volume"][i])


def test_divergence_reaches_the_wire_and_is_counted(okx: SimExchangeServer) -> None:
    clean = candles(okx, after=T10 + 2 * MINUTE_MS, limit=4)
    okx.set_faults("divergence:symbol=BTCUSDT,start=2024-03-01T10:00,minutes=1,factor=1.08")
    try:
        changed = candles(okx, after=T10 + 2 * MINUTE_MS, limit=4)
        assert okx.stats()["faults_fired"]["divergence"] == 1
    finally:
        okx.set_faults("")
    assert [changed[0], *changed[2:]] == [clean[0], *clean[2:]]
    assert Decimal(changed[1][4]) / Decimal(clean[1][4]) == pytest.approx(Decimal("1.08"),
                                                                         abs=Decimal("1e-5"))


def test_divergence_moves_the_live_ticker_book_and_trades_inside_its_window(
        okx: SimExchangeServer) -> None:
    def quotes(symbol: str) -> tuple[Decimal, Decimal, Decimal]:
        _, ticker = get(okx, "/api/v5/market/ticker", instId=symbol)
        _, book = get(okx, "/api/v5/market/books", instId=symbol)
        _, trades = get(okx, "/api/v5/market/trades", instId=symbol, limit=1)
        return (Decimal(ticker["data"][0]["last"]), Decimal(book["data"][0]["bids"][0][0]),
                Decimal(trades["data"][0]["px"]))

    now = datetime.fromtimestamp(NOW_MINUTE / 1000, UTC)
    clean, other = quotes("BTC-USDT"), quotes("ETH-USDT")
    okx.set_faults(f"divergence:symbol=BTCUSDT,start={now:%Y-%m-%dT%H:%M},minutes=1,factor=1.07")
    try:
        moved, other_then = quotes("BTC-USDT"), quotes("ETH-USDT")
    finally:
        okx.set_faults("")
    for before, after in zip(clean, moved, strict=True):
        assert after / before == pytest.approx(Decimal("1.07"), abs=Decimal("1e-4"))
    assert other_then == other  # another symbol is untouched
    okx.set_faults("divergence:symbol=BTCUSDT,start=2024-03-01T10:00,minutes=1,factor=1.07")
    try:
        assert quotes("BTC-USDT") == clean  # a window in the past does not move "now"
    finally:
        okx.set_faults("")
