"""The task that makes one symbol's market streams: trades as they happen, klines and tickers.

A :class:`SymbolDriver` runs while any client holds a stream of its symbol. It walks the
symbol's minutes (``plan``) on the market clock and sends each trade when its time comes:
``T`` is the trade's time on that clock (equal to REST's), ``E`` the wall-clock time the event
was handed to the connections. ``@kline_1m`` is built from the trades already sent (every
``kline_push_s``, then a final ``x=true`` event when the minute closes); longer kline
intervals, ``@ticker``, ``@miniTicker`` and ``@bookTicker`` are the REST views
(``/api/v3/klines``, ``/ticker/24hr``, ``/ticker/bookTicker``) at the moment they are sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS
from helios_pipeline.sim.binance import quotes
from helios_pipeline.sim.market.candles import INTERVAL_MS, Kline
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.trades import ID_STRIDE
from helios_pipeline.sim.wire import to_units
from helios_pipeline.sim.ws.conn import WsConfig, WsConnection
from helios_pipeline.sim.ws.payloads import (
    Event,
    StreamName,
    agg_trade_event,
    book_ticker_event,
    kline_event,
    mini_ticker_event,
    ticker_event,
    trade_event,
)
from helios_pipeline.sim.ws.plan import LiveMinute, live_minute

Subscribers = dict[str, tuple[StreamName, set[WsConnection]]]
_LOG = logging.getLogger(__name__)
_MAX_SLEEP_S = 0.25
_MIN_SLEEP_S = 0.001
_SKIP_AFTER_MS = 5 * MINUTE_MS  # a clock jump this large skips minutes instead of sending them


class StreamHub(Protocol):
    """What a driver needs from the hub that owns it."""

    feed: MarketFeed
    config: WsConfig

    def market_ms(self) -> int:
        """The market clock (ms)."""

    def streams_of(self, symbol: str) -> Subscribers:
        """Stream name -> (parsed name, subscribers) for ``symbol``."""

    def publish(self, stream: str, subscribers: set[WsConnection], event: Event,
                now_ns: int) -> None:
        """Send ``event`` to ``subscribers`` of ``stream``."""

    def burst_sent(self, symbol: str, count: int) -> None:
        """Record that a held-back burst of ``count`` trade events went out."""


def _rest_kline(row: bytes) -> Kline:
    """A ``/api/v3/klines`` wire row back as a :class:`Kline`."""
    f = json.loads(row)
    return Kline(int(f[0]), to_units(f[1]), to_units(f[2]), to_units(f[3]), to_units(f[4]),
                 to_units(f[5]), int(f[6]), to_units(f[7]), int(f[8]), to_units(f[9]),
                 to_units(f[10]))


class SymbolDriver:
    """Sends the streams of one symbol to its subscribers (see the module docstring)."""

    def __init__(self, hub: StreamHub, symbol: str) -> None:
        """Prepare the driver (the loop starts with :meth:`start`)."""
        self.hub = hub
        self.symbol = symbol
        self.rate = hub.config.rate_for(symbol)
        self.minute: LiveMinute | None = None
        self.minute_ms = -1
        self.happened = 0
        self.backlog: list[tuple[LiveMinute, int, int]] = []  # happened, not yet sent
        self.hold: int | None = None  # ws_burst: trades to hold back before sending them all
        self._next_kline = self._next_ticker = 0
        self._book: tuple[str, ...] | None = None
        self._book_checked = (0, 0, 0)  # (minute, trades happened, second) of the last look
        self._book_id = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self.task = asyncio.get_running_loop().create_task(self.run(), name=self.symbol)

    async def run(self) -> None:
        """Send events until no stream of the symbol is subscribed."""
        speed, last = 1.0, (self.hub.market_ms(), time.monotonic())
        while self.hub.streams_of(self.symbol):
            now = self.hub.market_ms()
            wall = time.monotonic()
            if wall - last[1] > 0.002:  # how fast the market clock runs (tests speed it up)
                speed = min(1000.0, max(1.0, (now - last[0]) / 1000 / (wall - last[1])))
            last = (now, wall)
            try:
                self.step(now)
            except Exception:  # a bug must not silence every stream of the symbol for good
                _LOG.exception("Stream driver of %s failed at %d; retrying in 1 s.",
                               self.symbol, now)
                await asyncio.sleep(1.0)
                continue
            delay = (self._next_wake(now) - now) / 1000 / speed
            await asyncio.sleep(min(_MAX_SLEEP_S, max(_MIN_SLEEP_S, delay)))

    # ----------------------------------------------------------------------------- stepping

    def step(self, now: int) -> None:
        """Bring the streams up to market time ``now``."""
        if self.minute_ms < 0 or now - self.minute_ms >= _SKIP_AFTER_MS:
            self._enter(now // MINUTE_MS * MINUTE_MS, now)
        while now >= self.minute_ms + MINUTE_MS:
            self._finish_minute()
            self._enter(self.minute_ms + MINUTE_MS, None)
        streams = self.hub.streams_of(self.symbol)
        self._advance(self.minute.count_until(now) if self.minute else 0, streams)
        self._send_trades(streams)
        if now >= self._next_kline:
            self._next_kline = self._after(now, self.hub.config.kline_push_s)
            self._push_klines(streams, now)
        if now >= self._next_ticker:
            self._next_ticker = self._after(now, self.hub.config.ticker_push_s)
            self._push_tickers(streams, now)
        self._push_book(streams, now)

    @staticmethod
    def _after(now: int, period_s: float) -> int:
        period = max(1, int(period_s * 1000))
        return (now // period + 1) * period

    def _enter(self, minute_ms: int, skip_to: int | None) -> None:
        """Start minute ``minute_ms``; trades before ``skip_to`` are not sent (a late start)."""
        self.minute_ms = minute_ms
        self.minute = live_minute(self.hub.feed, self.symbol, minute_ms, self.rate)
        self.happened = 0
        if self.minute is not None and skip_to is not None:
            self.happened = self.minute.count_until(skip_to)

    def _advance(self, happened: int, streams: Subscribers) -> None:
        if self.minute is not None and happened > self.happened:
            if self._has(streams, "trade", "aggTrade"):
                self.backlog.append((self.minute, self.happened, happened))
            self.happened = happened

    def _finish_minute(self) -> None:
        streams = self.hub.streams_of(self.symbol)
        if self.minute is not None:
            self._advance(len(self.minute), streams)
            self._send_trades(streams)
        end = self.minute_ms + MINUTE_MS
        now_ns = time.time_ns()
        for sn, subs in self._klines(streams):
            if sn.interval == "1m" and self.minute is not None:
                k = self.minute.closed()
                self._kline(sn, subs, k, self.minute.ids(len(self.minute)), True, now_ns)
            elif sn.interval != "1m" and end % INTERVAL_MS[str(sn.interval)] == 0:
                self._rest_kline_event(sn, subs, (end - 1, end), True, now_ns)
        self._next_kline = end  # the new minute's first kline goes out at once

    # ----------------------------------------------------------------------------- trades

    @staticmethod
    def _has(streams: Subscribers, *kinds: str) -> bool:
        return any(sn.kind in kinds for sn, _ in streams.values())

    def _send_trades(self, streams: Subscribers) -> None:
        if not self.backlog:
            return
        if not self._has(streams, "trade", "aggTrade"):
            self.backlog.clear()
            return
        pending = sum(hi - lo for _, lo, hi in self.backlog)
        if self.hold is not None:
            if pending < self.hold:
                return
            self.hold = None
            self.hub.burst_sent(self.symbol, pending)
        now_ns = time.time_ns()
        trade = streams.get(f"{self.symbol.lower()}@trade")
        agg = streams.get(f"{self.symbol.lower()}@aggTrade")
        for minute, lo, hi in self.backlog:
            if trade is not None:
                self._publish_trades(trade, minute, lo, hi, now_ns)
            if agg is not None:
                self._publish_aggs(agg, minute, lo, hi, now_ns)
        self.backlog.clear()

    def _publish_trades(self, stream: tuple[StreamName, set[WsConnection]], minute: LiveMinute,
                        lo: int, hi: int, now_ns: int) -> None:
        sn, subs = stream
        event_ms = now_ns // 1_000_000
        for t, price, qty, _, _, time_ms, maker in minute.trades.rows(lo, hi):
            self.hub.publish(sn.name, subs, trade_event(self.symbol, event_ms, t, price, qty,
                                                        time_ms, maker), now_ns)

    def _publish_aggs(self, stream: tuple[StreamName, set[WsConnection]], minute: LiveMinute,
                      lo: int, hi: int, now_ns: int) -> None:
        sn, subs = stream
        event_ms = now_ns // 1_000_000
        for row in minute.aggs.rows(minute.aggs_done(lo), minute.aggs_done(hi)):
            self.hub.publish(sn.name, subs, agg_trade_event(self.symbol, event_ms, row), now_ns)

    # ----------------------------------------------------------------------------- klines

    @staticmethod
    def _klines(streams: Subscribers) -> Iterator[tuple[StreamName, set[WsConnection]]]:
        return ((sn, subs) for sn, subs in list(streams.values()) if sn.kind == "kline")

    def _kline(self, sn: StreamName, subs: set[WsConnection], k: Kline, ids: tuple[int, int],
               closed: bool, now_ns: int) -> None:
        event = kline_event(self.symbol, now_ns // 1_000_000, str(sn.interval), k, ids[0],
                            ids[1], closed)
        self.hub.publish(sn.name, subs, event, now_ns)

    def _push_klines(self, streams: Subscribers, now: int) -> None:
        now_ns = time.time_ns()
        for sn, subs in self._klines(streams):
            if sn.interval != "1m":
                self._rest_kline_event(sn, subs, (now, now), False, now_ns)
            elif self.minute is not None:
                n = self.happened
                self._kline(sn, subs, self.minute.partial(n), self.minute.ids(n), False, now_ns)

    def _rest_kline_event(self, sn: StreamName, subs: set[WsConnection],
                          at: tuple[int, int], closed: bool, now_ns: int) -> None:
        """REST's kline of a longer interval: the one holding ``at[0]``, as of ``at[1]``."""
        interval = INTERVAL_MS[str(sn.interval)]
        open_ms = at[0] // interval * interval
        rows = self.hub.feed.klines(self.symbol, interval, start_ms=open_ms, end_ms=open_ms,
                                    limit=1, now_ms=at[1])
        if rows:
            k = _rest_kline(rows[0])
            self._kline(sn, subs, k, self._rest_ids(k), closed, now_ns)

    def _rest_ids(self, k: Kline) -> tuple[int, int]:
        """REST trade ids of the first and last trade of kline ``k`` (-1 without trades)."""
        if not k.trades:
            return -1, -1
        day = k.open_ms // DAY_MS
        block = self.hub.feed.day_1m(self.symbol, day)
        index = int(np.searchsorted(block.open_ms, k.open_ms, side="left"))
        first = day * ID_STRIDE + int(block.cols["trades"][:index].sum())
        return first, first + k.trades - 1

    # ----------------------------------------------------------------------------- tickers

    def _push_tickers(self, streams: Subscribers, now: int) -> None:
        name = self.symbol.lower()
        full, mini = streams.get(f"{name}@ticker"), streams.get(f"{name}@miniTicker")
        if full is None and mini is None:
            return
        rest = quotes.ticker_24hr_json(self.hub.feed, self.symbol, now)
        now_ns = time.time_ns()
        if full is not None:
            self.hub.publish(full[0].name, full[1], ticker_event(rest, now_ns // 1_000_000),
                             now_ns)
        if mini is not None:
            self.hub.publish(mini[0].name, mini[1],
                             mini_ticker_event(rest, now_ns // 1_000_000), now_ns)

    def _push_book(self, streams: Subscribers, now: int) -> None:
        book = streams.get(f"{self.symbol.lower()}@bookTicker")
        if book is None:
            self._book = None
            return
        checked = (self.minute_ms, self.happened, now // 1000)  # the book moves with these
        if checked == self._book_checked:
            return
        self._book_checked = checked
        rest = quotes.book_ticker_json(self.hub.feed, self.symbol, now)
        key = (rest["bidPrice"], rest["bidQty"], rest["askPrice"], rest["askQty"])
        if key == self._book:
            return
        self._book = key
        self._book_id = max(self._book_id + 1, now)
        self.hub.publish(book[0].name, book[1], book_ticker_event(rest, self._book_id),
                         time.time_ns())

    def _next_wake(self, now: int) -> int:
        wake = min(self.minute_ms + MINUTE_MS, self._next_kline, self._next_ticker)
        if self.minute is not None and self.happened < len(self.minute):
            wake = min(wake, int(self.minute.trades.time[self.happened]))
        return max(wake, now + 1)
