"""Payload parsing and URL override at the ccxt boundary (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import ccxt
import pytest

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges import ccxt_adapter as adapter
from helios_pipeline.exchanges.errors import ExchangeDataError
from helios_pipeline_tests.conftest import EXCERPT

ROW = [1706630400000, "43519.34000000", "43936.00000000", "43171.00000000", "43488.71000000",
       "20.55495000", 1706633999999, "891428.42858070", 3743, "10.91428000",
       "473782.95739920", "0"]


def test_kline_row_keeps_all_fields_exactly() -> None:
    [(open_ms, candle)] = adapter.kline_rows([ROW], "BTC/USDT", Timeframe.H1, "test")
    assert open_ms == 1706630400000
    assert candle.timestamp == datetime(2024, 1, 30, 16, tzinfo=UTC)
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("43519.34000000"), Decimal("43936.00000000"), Decimal("43171.00000000"),
        Decimal("43488.71000000"),
    )
    assert str(candle.volume) == "20.55495000"
    assert candle.trades == 3743
    assert candle.quote_volume == Decimal("891428.42858070")
    assert candle.taker_buy_volume == Decimal("10.91428000")
    assert candle.taker_buy_quote_volume == Decimal("473782.95739920")
    assert candle.close_time_ms == 1706633999999


def test_recorded_binance_klines_parse_to_what_ccxt_reports() -> None:
    case = json.loads(EXCERPT.read_text())["response"]["fetchOHLCV"][0]
    parsed = adapter.kline_rows(case["httpResponse"], "BTC/USDT", Timeframe.H1, "test")
    got = [[ms, float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume)]
           for ms, c in parsed]
    assert got == case["parsedResponse"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROW[:11], "12 fields, got 11"),
        ([*ROW, "x"], "12 fields, got 13"),
        ({"t": 1}, "12 fields, got dict"),
        ([ROW[0], "abc", *ROW[2:]], "kline row does not parse"),
        ([ROW[0], None, *ROW[2:]], "open must be a decimal string"),
        ([ROW[0], 43519.34, *ROW[2:]], "open must be a decimal string"),
        ([ROW[0], "NaN", *ROW[2:]], "not a finite number"),
        (["1706630400000x", *ROW[1:]], "kline row does not parse"),
        ([*ROW[:8], None, *ROW[9:]], "trades must be an integer"),
    ],
)
def test_a_row_that_does_not_parse_fails_the_whole_payload(row: object, message: str) -> None:
    with pytest.raises(ExchangeDataError, match=message) as info:
        adapter.kline_rows([ROW, row], "BTC/USDT", Timeframe.M1, "binance klines BTC/USDT (url)")
    assert "binance klines BTC/USDT (url)" in str(info.value)
    assert info.value.payload_excerpt


def test_a_payload_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(ExchangeDataError, match="expected a JSON array of klines"):
        adapter.kline_rows({"code": -1, "msg": "x"}, "BTC/USDT", Timeframe.M1, "src")


def test_unified_rows_leave_trade_fields_unknown() -> None:
    rows = [[1706630400000, Decimal("1.5"), Decimal("2"), Decimal("1"), Decimal("1.75"), 3]]
    [(ms, candle)] = adapter.unified_rows(rows, "BTC/USD", Timeframe.M1, "src")
    assert ms == 1706630400000
    assert candle.close == Decimal("1.75")
    assert candle.volume == Decimal(3)
    assert candle.trades is None
    assert candle.taker_buy_volume is None
    with pytest.raises(ExchangeDataError, match="does not parse"):
        adapter.unified_rows([[1, None, 1, 1, 1, 1]], "BTC/USD", Timeframe.M1, "src")


def test_override_urls_points_every_rest_entry_at_the_base_url() -> None:
    urls = {"api": {
        "public": "https://api.binance.com/api/v3",
        "private": "https://api.binance.com/api/v3",
        "v1": "https://api.binance.com/api/v1",
        "fapiPublic": "https://fapi.binance.com/fapi/v1",
        "ws": {"spot": "wss://stream.binance.com:9443/ws", "future": "wss://fstream"},
    }}
    adapter.override_urls(urls, "http://127.0.0.1:8123/")
    api = urls["api"]
    assert api["public"] == "http://127.0.0.1:8123/api/v3"
    assert api["private"] == "http://127.0.0.1:8123/api/v3"
    assert api["v1"] == "http://127.0.0.1:8123/api/v1"
    assert api["fapiPublic"] == "http://127.0.0.1:8123/fapi/v1"
    assert api["ws"] == {"spot": "ws://127.0.0.1:8123/ws", "future": "wss://fstream"}


def test_each_exchange_instance_gets_its_own_urls() -> None:
    first = adapter.create_exchange("binance", {}, lambda *_: None, lambda _: True)
    second = adapter.create_exchange("binance", {}, lambda *_: None, lambda _: True)
    adapter.override_urls(first.urls, "http://127.0.0.1:1")
    assert second.urls["api"]["public"] == "https://api.binance.com/api/v3"
    assert type(first).__name__ == "Helios" + type(first).__mro__[1].__name__
    assert first.number is Decimal


def test_unknown_exchange_id_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown ccxt exchange id 'binanse'"):
        adapter.ccxt_class("binanse")


def test_market_uses_the_venue_filter_strings() -> None:
    market = {
        "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "active": True,
        "precision": {"price": Decimal("0.01"), "amount": Decimal("0.00001")},
        "limits": {"amount": {"min": Decimal("0.00001"), "max": Decimal("9000")},
                   "cost": {"min": Decimal("5")}},
        "info": {"filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.00001000", "minQty": "0.00001000",
             "maxQty": "9000.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000"},
        ]},
    }
    got = adapter.market_from_ccxt("binance", market, ccxt.TICK_SIZE)
    assert str(got.tick_size) == "0.01000000"
    assert str(got.lot_size) == "0.00001000"
    assert str(got.min_qty) == "0.00001000"
    assert str(got.max_qty) == "9000.00000000"
    assert str(got.min_notional) == "5.00000000"
    bare = adapter.market_from_ccxt("kraken", {**market, "info": {}}, ccxt.TICK_SIZE)
    assert (bare.tick_size, bare.min_notional) == (Decimal("0.01"), Decimal("5"))
    places = adapter.market_from_ccxt(
        "x", {**market, "info": {}, "precision": {"price": 2, "amount": 5}}, ccxt.DECIMAL_PLACES
    )
    assert (places.tick_size, places.lot_size) == (Decimal("0.01"), Decimal("0.00001"))


def test_ticker_point_is_exact_and_refuses_missing_fields() -> None:
    ticker = {"symbol": "BTC/USDT", "timestamp": 1710328245391, "last": Decimal("73369.84"),
              "baseVolume": Decimal("72140.348628"), "bid": Decimal("73369.83000000"),
              "ask": Decimal("73369.84000000")}
    point = adapter.ticker_point(ticker, "BTC/USDT", "binance", 0.0)
    assert point.spread == Decimal("0.01000000")
    assert point.timestamp == datetime(2024, 3, 13, 11, 10, 45, 391000, tzinfo=UTC)
    with pytest.raises(ExchangeDataError, match="the ticker has no bid, ask"):
        adapter.ticker_point({**ticker, "bid": None, "ask": None}, "BTC/USDT", "binance", 0.0)
