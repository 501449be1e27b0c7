"""Synthetic trades that add up to the klines, and the still-open kline built from them.

For every 1m kline the simulator derives (deterministically from symbol and minute) a list of
aggregate trades: the first trades at the open, the last at the close, the high and the low are
both hit, the quantities sum exactly to the volume, the taker-buy quantities to the taker-buy
volume and the fills to the trade count. Quote volumes are only approximately ``sum(p * q)``.

Trade and aggregate-trade ids are ``day * ID_STRIDE + position within the day``, so they increase
with time and ``fromId`` can be mapped back to a minute; they jump at each UTC midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from helios_pipeline.sim.market.candles import AnyArray, Kline, int_column
from helios_pipeline.sim.market.universe import SymbolSpec
from helios_pipeline.sim.wire import SCALE, fmt8, stable_seed

ID_STRIDE = 1_000_000_000
"""Trade ids of day ``d`` start at ``d * ID_STRIDE``."""

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def agg_trade_count(trades: AnyArray) -> AnyArray:
    """Number of aggregate trades for kline trade counts (about two fills per aggregate)."""
    return (trades + 1) // 2


def agg_trades_of(trades: int) -> int:
    """:func:`agg_trade_count` of one kline."""
    return (trades + 1) // 2


@dataclass(frozen=True)
class MinuteTrades:
    """The aggregate trades of one minute, in time order (one array entry per aggregate)."""

    agg_id: IntArray
    first_id: IntArray
    last_id: IntArray
    time: IntArray
    price: AnyArray
    qty: AnyArray
    buyer_maker: BoolArray

    def __len__(self) -> int:
        """Number of aggregate trades."""
        return len(self.agg_id)

    def count_until(self, now_ms: int) -> int:
        """How many aggregate trades happened at or before ``now_ms``."""
        return int(np.searchsorted(self.time, now_ms, side="right"))

    def agg_json(self, lo: int, hi: int) -> list[dict[str, Any]]:
        """``/api/v3/aggTrades`` objects for aggregates ``[lo, hi)``, fields in Binance order."""
        cols = [c[lo:hi].tolist() for c in (self.agg_id, self.price, self.qty, self.first_id,
                                            self.last_id, self.time, self.buyer_maker)]
        return [{"a": a, "p": fmt8(p), "q": fmt8(q), "f": f, "l": last, "T": t, "m": m, "M": True}
                for a, p, q, f, last, t, m in zip(*cols, strict=True)]

    def fill_json(self, lo: int, hi: int) -> list[dict[str, Any]]:
        """``/api/v3/trades`` objects for every fill of aggregates ``[lo, hi)``."""
        out: list[dict[str, Any]] = []
        cols = [c[lo:hi].tolist() for c in (self.first_id, self.last_id, self.price, self.qty,
                                            self.time, self.buyer_maker)]
        for first, last, price, qty, time, maker in zip(*cols, strict=True):
            count = last - first + 1
            share, extra = divmod(qty, count)
            for j in range(count):
                part = share + (1 if j < extra else 0)
                out.append({"id": first + j, "price": fmt8(price), "qty": fmt8(part),
                            "quoteQty": fmt8(price * part // SCALE), "time": time,
                            "isBuyerMaker": maker, "isBestMatch": True})
        return out


def _allocate(rng: np.random.Generator, total: int, minimums: IntArray) -> list[int]:
    """Split ``total`` into parts ``>= minimums`` (when possible) with random weights."""
    n = len(minimums)
    spare = total - int(minimums.sum())
    if spare < 0:  # not enough units for the minimums: split as evenly as possible
        share, extra = divmod(total, n)
        return [share + (1 if i < extra else 0) for i in range(n)]
    weights = np.cumsum(rng.lognormal(0.0, 1.0, n))
    bounds = [round(float(w) / float(weights[-1]) * spare) for w in weights]
    bounds[-1] = spare
    parts, previous = [], 0
    for bound, minimum in zip(bounds, minimums.tolist(), strict=True):
        parts.append(bound - previous + minimum)
        previous = bound
    return parts


def _buy_count(aggs: int, volume: int, taker_base: int) -> int:
    if taker_base <= 0:
        return 0
    if taker_base >= volume:
        return aggs
    if aggs == 1:
        return 1 if 2 * taker_base >= volume else 0
    return min(aggs - 1, max(1, round(aggs * taker_base / volume)))


def _quantities(rng: np.random.Generator, k: Kline, fills: IntArray, is_buy: BoolArray,
                step_units: int) -> AnyArray:
    """Aggregate quantities: buys sum to the taker-buy volume, all sum to the volume."""
    unit = step_units if k.volume % step_units == 0 and k.taker_base % step_units == 0 else 1
    buy_total = k.volume if is_buy.all() else (k.taker_base if is_buy.any() else 0)
    qty = [0] * len(fills)
    for mask, total in ((is_buy, buy_total), (~is_buy, k.volume - buy_total)):
        index = np.flatnonzero(mask)
        if len(index):
            parts = _allocate(rng, total // unit, fills[index])
            for i, part in zip(index.tolist(), parts, strict=True):
                qty[i] = part * unit
    return int_column(qty)


def _prices(rng: np.random.Generator, k: Kline, aggs: int, tick_units: int) -> AnyArray:
    on_grid = (k.high - k.low) % tick_units == 0 and k.low % tick_units == 0
    tick = tick_units if on_grid else 1
    levels = (k.high - k.low) // tick
    prices = [k.low + int(x) * tick for x in rng.integers(0, levels + 1, aggs).tolist()]
    middle = rng.permutation(np.arange(1, aggs - 1)).tolist() if aggs > 2 else []
    needed = [p for p in (k.high, k.low) if p not in (k.open, k.close)]
    for position, price in zip(middle, needed, strict=False):
        prices[position] = price
    prices[0] = k.open
    prices[-1] = k.close
    return int_column(prices)


def minute_trades(spec: SymbolSpec, k: Kline, first_agg_id: int,
                  first_trade_id: int) -> MinuteTrades:
    """The aggregate trades behind kline ``k`` (a closed 1m kline of ``spec.symbol``)."""
    aggs = agg_trades_of(k.trades)
    if aggs == 0:
        empty = np.zeros(0, dtype=np.int64)
        return MinuteTrades(empty, empty, empty, empty, empty, empty, empty.astype(bool))
    rng = np.random.default_rng([stable_seed("trades", spec.symbol), max(0, k.open_ms)])
    fills = 1 + rng.multinomial(k.trades - aggs, np.full(aggs, 1.0 / aggs)).astype(np.int64)
    is_buy = np.zeros(aggs, dtype=bool)
    is_buy[rng.permutation(aggs)[: _buy_count(aggs, k.volume, k.taker_base)]] = True
    first_ids = first_trade_id + np.concatenate(([0], np.cumsum(fills)[:-1]))
    return MinuteTrades(
        agg_id=first_agg_id + np.arange(aggs, dtype=np.int64),
        first_id=first_ids,
        last_id=first_ids + fills - 1,
        time=np.sort(rng.integers(k.open_ms, k.close_ms + 1, aggs)),
        price=_prices(rng, k, aggs, spec.tick_units),
        qty=_quantities(rng, k, fills, is_buy, spec.step_units),
        buyer_maker=~is_buy,
    )


def partial_kline(k: Kline, trades: MinuteTrades, now_ms: int) -> Kline:
    """Kline ``k`` as it looked at ``now_ms`` (before its close): only the trades so far."""
    n = trades.count_until(now_ms)
    if n == 0:
        return k._replace(high=k.open, low=k.open, close=k.open, volume=0, quote_volume=0,
                          trades=0, taker_base=0, taker_quote=0)
    prices = trades.price[:n].tolist()
    qty = trades.qty[:n].tolist()
    buys = (~trades.buyer_maker[:n]).tolist()
    notional = [p * q for p, q in zip(prices, qty, strict=True)]
    return k._replace(
        high=max(prices),
        low=min(prices),
        close=prices[-1],
        volume=sum(qty),
        quote_volume=sum(notional) // SCALE,
        trades=int(trades.last_id[n - 1] - trades.first_id[0] + 1),
        taker_base=sum(q for q, b in zip(qty, buys, strict=True) if b),
        taker_quote=sum(x for x, b in zip(notional, buys, strict=True) if b) // SCALE,
    )
