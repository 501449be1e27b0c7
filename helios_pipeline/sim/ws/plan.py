"""The trades the websocket streams send in one minute, cut from the REST market model.

Every minute of a symbol is planned from its closed REST 1m kline and that kline's synthetic
trade tape (``trades``), so a candle built from the stream reconciles with ``/api/v3/klines``:

* **Market rate** (``rate=None``, the default): the minute's fills exactly as ``/api/v3/trades``
  serves them (same ids, prices, quantities, times and maker flags) and its aggregates exactly
  as ``/api/v3/aggTrades`` does. Open, high, low, close, volume, trade count and taker-buy
  volume of every minute equal the REST kline.
* **Fixed rate** (``rate`` trades per second): the same price path re-cut into
  ``round(rate * 60)`` trades spaced evenly over the minute, each symbol at its own phase
  within a spacing (from a hash of its id: symbols trade independently on a real exchange, and
  in lockstep every symbol's trade would leave in the same millisecond). Above the market's
  own count every fill is split into equal-priced pieces; below it consecutive fills are
  merged, keeping the fills that set the open, high, low and close (so at least four trades
  are sent when the tape has four). Open, high, low, close and volume still equal the REST
  kline exactly; the trade count is the configured one, and ids are
  ``minute_index * RESAMPLED_ID_STRIDE + position`` (increasing, but not the REST ids). Each
  resampled trade is its own aggregate.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS
from helios_pipeline.sim.market.candles import Kline
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.trades import MinuteTrades
from helios_pipeline.sim.wire import SCALE

RESAMPLED_ID_STRIDE = 10_000_000
"""Trade ids of a fixed-rate minute ``m`` (minutes since 1970) start at ``m * stride``."""
MAX_TRADES_PER_SECOND = 100_000.0
"""Highest configurable trade rate per symbol."""

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_SAFE = 1 << 62


@dataclass(frozen=True)
class Trades:
    """Trades or aggregates in sending order (numpy columns; money in 1e-8 units).

    Attributes:
        id: Trade id (aggregate id for aggregates).
        time: Trade time in ms, non-decreasing.
        price: Price.
        qty: Quantity.
        maker: Whether the buyer was the maker.
        first_id: First trade id of the aggregate (the trade id for trades).
        last_id: Last trade id of the aggregate (the trade id for trades).
    """

    id: I64
    time: I64
    price: I64
    qty: I64
    maker: Bools
    first_id: I64
    last_id: I64

    def __len__(self) -> int:
        """Number of entries."""
        return len(self.id)

    def rows(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        """Entries ``[lo, hi)`` as ``(id, price, qty, first_id, last_id, time, maker)``."""
        cols = [c[lo:hi].tolist() for c in (self.id, self.price, self.qty, self.first_id,
                                            self.last_id, self.time, self.maker)]
        return list(zip(*cols, strict=True))


def _notional(price: I64, qty: I64) -> int:
    """``sum(price * qty) // SCALE`` exactly (int64 when that cannot overflow)."""
    if not len(qty):
        return 0
    if int(qty.sum()) < _SAFE // SCALE:
        whole, frac = np.divmod(price, SCALE)
        return int((whole * qty).sum()) + int((frac * qty).sum()) // SCALE
    return sum(int(p) * int(q) for p, q in zip(price.tolist(), qty.tolist(), strict=True)
               ) // SCALE


@dataclass(frozen=True)
class LiveMinute:
    """The trades of one minute in sending order, and the aggregates they complete.

    Attributes:
        kline: The closed REST 1m kline of the minute.
        trades: The trades (``@trade``).
        aggs: The aggregates (``@aggTrade``).
        agg_end: For each trade, how many aggregates are complete once it is sent.
    """

    kline: Kline
    trades: Trades
    aggs: Trades
    agg_end: I64

    @property
    def minute_ms(self) -> int:
        """Open time of the minute."""
        return self.kline.open_ms

    def __len__(self) -> int:
        """Number of trades."""
        return len(self.trades)

    def count_until(self, now_ms: int) -> int:
        """How many trades happened at or before ``now_ms``."""
        return int(np.searchsorted(self.trades.time, now_ms, side="right"))

    def aggs_done(self, n: int) -> int:
        """How many aggregates are complete after the first ``n`` trades."""
        return int(self.agg_end[n - 1]) if n else 0

    def ids(self, n: int) -> tuple[int, int]:
        """First and last trade id of the first ``n`` trades (-1, -1 when ``n`` is 0)."""
        t = self.trades.id
        return (int(t[0]), int(t[n - 1])) if n else (-1, -1)

    def closed(self) -> Kline:
        """The final kline: the REST kline, with the number of trades this minute sends."""
        return self.kline._replace(trades=len(self.trades))

    def partial(self, n: int) -> Kline:
        """The still-open kline after the first ``n`` trades, built from them as REST does."""
        k, t = self.kline, self.trades
        if n == 0:
            return k._replace(high=k.open, low=k.open, close=k.open, volume=0, quote_volume=0,
                              trades=0, taker_base=0, taker_quote=0)
        price, qty, buy = t.price[:n], t.qty[:n], ~t.maker[:n]
        return k._replace(high=int(price.max()), low=int(price.min()), close=int(price[-1]),
                          volume=int(qty.sum()), quote_volume=_notional(price, qty), trades=n,
                          taker_base=int(qty[buy].sum()),
                          taker_quote=_notional(price[buy], qty[buy]))


def _pieces(counts: I64) -> tuple[I64, I64]:
    """For parents split into ``counts`` pieces: each piece's parent and index within it."""
    parent = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return parent, np.arange(int(counts.sum()), dtype=np.int64) - starts[parent]


def _tape_aggs(tape: MinuteTrades) -> Trades:
    return Trades(tape.agg_id.astype(np.int64), tape.time.astype(np.int64),
                  tape.price.astype(np.int64), tape.qty.astype(np.int64),
                  tape.buyer_maker.astype(bool), tape.first_id.astype(np.int64),
                  tape.last_id.astype(np.int64))


def _natural(k: Kline, tape: MinuteTrades) -> LiveMinute:
    """Every fill of the tape, split the way ``/api/v3/trades`` splits aggregates."""
    aggs = _tape_aggs(tape)
    counts = aggs.last_id - aggs.first_id + 1
    parent, offset = _pieces(counts)
    share, extra = np.divmod(aggs.qty, counts)
    ids = aggs.first_id[parent] + offset
    trades = Trades(ids, aggs.time[parent], aggs.price[parent],
                    share[parent] + (offset < extra[parent]), aggs.maker[parent], ids, ids)
    agg_end = parent + (offset == counts[parent] - 1)
    return LiveMinute(k, trades, aggs, agg_end.astype(np.int64))


def _merged(price: I64, qty: I64, maker: Bools, target: int) -> tuple[I64, I64, Bools]:
    """``target`` trades from consecutive fills; the open, high, low and close fills lead."""
    n = len(price)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1, int(price.argmax()), int(price.argmin())]] = True
    rest = np.flatnonzero(~keep)
    extra = max(0, min(target, n) - int(keep.sum()))
    keep[rest[(np.arange(extra) * len(rest)) // max(1, extra)]] = True
    starts = np.flatnonzero(keep)
    return price[starts], np.add.reduceat(qty, starts), maker[starts]


def _split(price: I64, qty: I64, maker: Bools, target: int) -> tuple[I64, I64, Bools]:
    """``target`` trades (fewer when quantities are too small) by cutting fills into pieces."""
    n = len(price)
    base, rem = divmod(target - n, n)
    parts = np.clip(1 + base + (np.arange(n) < rem), 1, np.maximum(qty, 1)).astype(np.int64)
    parent, offset = _pieces(parts)
    share, extra = np.divmod(qty, parts)
    return price[parent], share[parent] + (offset < extra[parent]), maker[parent]


def _resampled(natural: LiveMinute, rate: float, symbol: str) -> LiveMinute:
    t = natural.trades
    n, target = len(t), max(1, round(min(rate, MAX_TRADES_PER_SECOND) * 60))
    if n == 0:
        return natural
    cut = (_merged if target < n else _split)(t.price, t.qty, t.maker, target)
    m = len(cut[0])
    j = np.arange(m, dtype=np.int64)
    start = natural.minute_ms
    phase = zlib.crc32(symbol.encode()) % 1000  # thousandths of a spacing
    times = start + (j * 1000 + phase) * MINUTE_MS // (m * 1000)
    ids = start // MINUTE_MS * RESAMPLED_ID_STRIDE + j
    trades = Trades(ids, times, cut[0], cut[1].astype(np.int64), cut[2], ids, ids)
    return LiveMinute(natural.kline, trades, trades, j + 1)


def live_minute(feed: MarketFeed, symbol: str, minute_ms: int,
                rate: float | None = None) -> LiveMinute | None:
    """The trades ``symbol`` sends in the minute opening at ``minute_ms``.

    Args:
        feed: The REST market model.
        symbol: Exchange id.
        minute_ms: Open time of the minute.
        rate: Trades per second (None: the market's own trades).

    Returns:
        None when the market has no kline for that minute (before or after its data).
    """
    block = feed.day_1m(symbol, minute_ms // DAY_MS)
    index = int(np.searchsorted(block.open_ms, minute_ms, side="left"))
    if index >= len(block) or int(block.open_ms[index]) != minute_ms:
        return None
    natural = _natural(block.kline(index), feed.tape(symbol, block, index))
    return natural if rate is None else _resampled(natural, rate, symbol)
