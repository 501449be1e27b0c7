"""Binance market-stream names and event payloads, field for field as the real exchange sends.

Stream names are ``<symbol>@<kind>`` with a lowercase symbol: ``btcusdt@trade``,
``btcusdt@aggTrade``, ``btcusdt@bookTicker``, ``btcusdt@ticker``, ``btcusdt@miniTicker`` and
``btcusdt@kline_<interval>`` (any interval of ``/api/v3/klines``). Payloads carry prices and
sizes as 8-place decimal strings and times in epoch milliseconds; :func:`in_micros` gives the
``timeUnit=MICROSECOND`` form of an event.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any, NamedTuple

from helios_pipeline.sim.market.candles import INTERVAL_MS, Kline
from helios_pipeline.sim.wire import fmt8

Event = dict[str, Any]

STREAM_KINDS = ("trade", "aggTrade", "bookTicker", "ticker", "miniTicker", "kline")
"""Stream kinds the simulator serves (``kline`` takes an ``_<interval>`` suffix)."""

_TIME_KEYS: dict[str, tuple[str, ...]] = {
    "trade": ("T",), "aggTrade": ("T",), "24hrTicker": ("O", "C"), "24hrMiniTicker": (),
}


class StreamName(NamedTuple):
    """A parsed stream name.

    Attributes:
        name: The name as subscribed (``btcusdt@kline_1m``).
        symbol: Exchange id (``BTCUSDT``).
        kind: One of :data:`STREAM_KINDS`.
        interval: ``kline``: the interval (``1m``); else None.
    """

    name: str
    symbol: str
    kind: str
    interval: str | None = None


def parse_stream(name: object, symbols: Container[str]) -> StreamName | None:
    """The stream ``name`` means, or None when it is not a stream of a listed symbol.

    Args:
        name: A stream name such as ``btcusdt@trade`` (the symbol must be lowercase).
        symbols: Listed exchange ids (``BTCUSDT``).
    """
    if not isinstance(name, str):
        return None
    lower, at, kind = name.partition("@")
    symbol = lower.upper()
    if not at or lower != lower.lower() or not symbol.isalnum() or symbol not in symbols:
        return None
    if kind.startswith("kline_") and kind[6:] in INTERVAL_MS:
        return StreamName(name, symbol, "kline", kind[6:])
    if kind in STREAM_KINDS and kind != "kline":
        return StreamName(name, symbol, kind)
    return None


def trade_event(symbol: str, event_ms: int, trade_id: int, price: int, qty: int, time_ms: int,
                buyer_maker: bool) -> Event:
    """``<symbol>@trade`` payload (price and quantity in 1e-8 units)."""
    return {"e": "trade", "E": event_ms, "s": symbol, "t": trade_id, "p": fmt8(price),
            "q": fmt8(qty), "T": time_ms, "m": buyer_maker, "M": True}


def agg_trade_event(symbol: str, event_ms: int, agg: tuple[int, int, int, int, int, int, bool],
                    ) -> Event:
    """``<symbol>@aggTrade`` payload from ``(agg_id, price, qty, first_id, last_id, T, m)``."""
    agg_id, price, qty, first_id, last_id, time_ms, maker = agg
    return {"e": "aggTrade", "E": event_ms, "s": symbol, "a": agg_id, "p": fmt8(price),
            "q": fmt8(qty), "f": first_id, "l": last_id, "T": time_ms, "m": maker, "M": True}


def kline_event(symbol: str, event_ms: int, interval: str, k: Kline, first_id: int,
                last_id: int, closed: bool) -> Event:
    """``<symbol>@kline_<interval>`` payload; ``first_id``/``last_id`` are -1 without trades."""
    return {"e": "kline", "E": event_ms, "s": symbol, "k": {
        "t": k.open_ms, "T": k.open_ms + INTERVAL_MS[interval] - 1, "s": symbol, "i": interval,
        "f": first_id, "L": last_id, "o": fmt8(k.open), "c": fmt8(k.close), "h": fmt8(k.high),
        "l": fmt8(k.low), "v": fmt8(k.volume), "n": k.trades, "x": closed,
        "q": fmt8(k.quote_volume), "V": fmt8(k.taker_base), "Q": fmt8(k.taker_quote),
        "B": "0"}}


def ticker_event(rest: dict[str, Any], event_ms: int) -> Event:
    """``<symbol>@ticker`` (24hrTicker) payload from a ``/api/v3/ticker/24hr`` entry."""
    return {"e": "24hrTicker", "E": event_ms, "s": rest["symbol"], "p": rest["priceChange"],
            "P": rest["priceChangePercent"], "w": rest["weightedAvgPrice"],
            "x": rest["prevClosePrice"], "c": rest["lastPrice"], "Q": rest["lastQty"],
            "b": rest["bidPrice"], "B": rest["bidQty"], "a": rest["askPrice"],
            "A": rest["askQty"], "o": rest["openPrice"], "h": rest["highPrice"],
            "l": rest["lowPrice"], "v": rest["volume"], "q": rest["quoteVolume"],
            "O": rest["openTime"], "C": rest["closeTime"], "F": rest["firstId"],
            "L": rest["lastId"], "n": rest["count"]}


def mini_ticker_event(rest: dict[str, Any], event_ms: int) -> Event:
    """``<symbol>@miniTicker`` (24hrMiniTicker) payload from a ``/ticker/24hr`` entry."""
    return {"e": "24hrMiniTicker", "E": event_ms, "s": rest["symbol"], "c": rest["lastPrice"],
            "o": rest["openPrice"], "h": rest["highPrice"], "l": rest["lowPrice"],
            "v": rest["volume"], "q": rest["quoteVolume"]}


def book_ticker_event(rest: dict[str, Any], update_id: int) -> Event:
    """``<symbol>@bookTicker`` payload (no ``e``/``E``) from a ``/ticker/bookTicker`` entry."""
    return {"u": update_id, "s": rest["symbol"], "b": rest["bidPrice"], "B": rest["bidQty"],
            "a": rest["askPrice"], "A": rest["askQty"]}


def in_micros(event: Event, event_us: int) -> Event:
    """The ``timeUnit=MICROSECOND`` form: ``E`` = ``event_us``, other times times 1000."""
    kind = event.get("e")
    if kind is None:  # bookTicker has no times
        return event
    out = dict(event)
    out["E"] = event_us
    if kind == "kline":
        k = dict(out["k"])
        k["t"], k["T"] = k["t"] * 1000, k["T"] * 1000 + 999
        out["k"] = k
        return out
    for key in _TIME_KEYS.get(str(kind), ()):
        out[key] = out[key] * 1000
    return out
