"""Tickers and order books of the simulated exchange, derived from the feed at "now".

The last price is the last synthetic trade at or before now; the book is a small synthetic
ladder whose best level sits on that trade (a taker buy leaves it on the ask, a taker sell on
the bid). Books change every second and are deterministic for a given second.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from helios_pipeline.domain.timeframe import DAY_MS
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.trades import ID_STRIDE
from helios_pipeline.sim.market.universe import symbol_spec
from helios_pipeline.sim.wire import SCALE, fmt8, stable_seed, to_units

Levels = list[list[str]]


def last_trade(feed: MarketFeed, symbol: str, now_ms: int) -> tuple[int, int, bool] | None:
    """``(price, qty, taker_bought)`` of the last trade at or before ``now_ms``, in 1e-8 units."""
    latest = feed.agg_trades(symbol, start_ms=None, end_ms=None, from_id=None, limit=1,
                             now_ms=now_ms)
    if not latest:
        return None
    trade = latest[-1]
    return to_units(trade["p"]), to_units(trade["q"]), not trade["m"]


def book(feed: MarketFeed, symbol: str, now_ms: int, depth: int) -> tuple[Levels, Levels]:
    """``depth`` bid and ask levels ``[[price, qty], ...]`` around the last trade."""
    last = last_trade(feed, symbol, now_ms)
    if last is None:
        return [], []
    spec = symbol_spec(symbol)
    tick = spec.tick_units
    price, _, taker_bought = last
    best_bid = max(tick, price - tick if taker_bought else price)
    rng = np.random.default_rng([stable_seed("book", symbol), max(0, now_ms // 1000)])
    mean_steps = max(1.0, 2.0 * spec.avg_trade_notional / (price / SCALE) / spec.step)

    def side(start: int, direction: int) -> Levels:
        gaps = rng.geometric(0.6, depth)
        offsets = np.cumsum(gaps) - gaps[0]  # the best level sits on the touch
        sizes = np.maximum(1, np.rint(rng.lognormal(np.log(mean_steps), 1.0, depth)))
        levels = []
        for offset, size in zip(offsets.tolist(), sizes.astype(np.int64).tolist(), strict=True):
            level = start + direction * offset * tick
            if level <= 0:
                break
            levels.append([fmt8(level), fmt8(size * spec.step_units)])
        return levels

    return side(best_bid, -1), side(best_bid + tick, 1)


def depth_json(feed: MarketFeed, symbol: str, now_ms: int, depth: int) -> dict[str, Any]:
    """``/api/v3/depth`` answer."""
    bids, asks = book(feed, symbol, now_ms, depth)
    return {"lastUpdateId": now_ms, "bids": bids, "asks": asks}


def book_ticker_json(feed: MarketFeed, symbol: str, now_ms: int) -> dict[str, Any]:
    """``/api/v3/ticker/bookTicker`` entry."""
    bids, asks = book(feed, symbol, now_ms, 1)
    bid = bids[0] if bids else [fmt8(0), fmt8(0)]
    ask = asks[0] if asks else [fmt8(0), fmt8(0)]
    return {"symbol": symbol, "bidPrice": bid[0], "bidQty": bid[1], "askPrice": ask[0],
            "askQty": ask[1]}


def price_ticker_json(feed: MarketFeed, symbol: str, now_ms: int) -> dict[str, Any]:
    """``/api/v3/ticker/price`` entry."""
    last = last_trade(feed, symbol, now_ms)
    return {"symbol": symbol, "price": fmt8(last[0] if last else 0)}


def _first_trade_id(feed: MarketFeed, symbol: str, open_ms: int) -> int:
    day = open_ms // DAY_MS
    block = feed.day_1m(symbol, day)
    index = int(np.searchsorted(block.open_ms, open_ms, side="left"))
    return day * ID_STRIDE + int(block.cols["trades"][:index].sum())


class _Window(NamedTuple):
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    volume: int = 0
    quote: int = 0
    first_id: int = -1
    last_id: int = -1
    trades: int = 0


def _window(feed: MarketFeed, symbol: str, now_ms: int) -> _Window:
    """Statistics of the 1m klines opened in the last 24 hours (the last one as of now)."""
    window = feed.minutes(symbol, now_ms - DAY_MS + 1, now_ms)
    c = window.cols
    count = int(c["trades"].sum()) if len(window) else 0
    if count == 0:
        return _Window()
    last_open = int(window.open_ms[-1])
    return _Window(
        open=int(c["open"][0]),
        high=int(c["high"].max()),
        low=int(c["low"].min()),
        close=int(c["close"][-1]),
        volume=sum(c["volume"].tolist()),
        quote=sum(c["quote_volume"].tolist()),
        first_id=_first_trade_id(feed, symbol, int(window.open_ms[0])),
        last_id=_first_trade_id(feed, symbol, last_open) + int(c["trades"][-1]) - 1,
        trades=count,
    )


def ticker_24hr_json(feed: MarketFeed, symbol: str, now_ms: int) -> dict[str, Any]:
    """``/api/v3/ticker/24hr`` entry over the 1m klines of the last 24 hours (as of now).

    ``prevClosePrice`` is the first price of the window and ``count`` the number of trades in
    it; ``firstId``/``lastId`` are real trade ids (they jump at UTC midnight, see ``trades``).
    """
    w = _window(feed, symbol, now_ms)
    bids, asks = book(feed, symbol, now_ms, 1)
    last = last_trade(feed, symbol, now_ms)
    zero = [fmt8(0), fmt8(0)]
    bid, ask = (bids or [zero])[0], (asks or [zero])[0]
    change_pct = (w.close - w.open) * 100 / w.open if w.open else 0.0
    return {
        "symbol": symbol,
        "priceChange": fmt8(w.close - w.open),
        "priceChangePercent": f"{change_pct:.3f}",
        "weightedAvgPrice": fmt8(w.quote * SCALE // w.volume if w.volume else 0),
        "prevClosePrice": fmt8(w.open),
        "lastPrice": fmt8(w.close),
        "lastQty": fmt8(last[1] if last and w.trades else 0),
        "bidPrice": bid[0], "bidQty": bid[1], "askPrice": ask[0], "askQty": ask[1],
        "openPrice": fmt8(w.open),
        "highPrice": fmt8(w.high),
        "lowPrice": fmt8(w.low),
        "volume": fmt8(w.volume),
        "quoteVolume": fmt8(w.quote),
        "openTime": now_ms - DAY_MS,
        "closeTime": now_ms,
        "firstId": w.first_id,
        "lastId": w.last_id,
        "count": w.trades,
    }
