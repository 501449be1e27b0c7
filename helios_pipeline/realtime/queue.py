"""The bounded queue between the exchange feeds and the writer, and its shedding policy.

ccxt.pro parses frames in its own socket callback, which cannot wait: a tick is offered to the
queue synchronously and the queue decides, immediately, what to do when it is full. Trades and
quotes (``ticker`` and ``book`` ticks, which the next one supersedes) wait in two lanes, each in
arrival order:

1. Room left (fewer than ``capacity`` ticks queued): the tick is queued.
2. Full: the **oldest quote** is shed to make room, whatever the new tick's kind.
3. Full of trades only: a new quote is shed itself (it is the only quote there is). A new trade
   is still queued while the trade **headroom** lasts (``capacity + trade_headroom`` ticks in
   all): that is the room trades have to wait briefly for the writer, which drains thousands per
   batch. Beyond it the **oldest trade** is shed.

Every shed tick is counted per symbol and kind (:attr:`TickQueue.shed`) and in the totals
``shed_quotes`` / ``shed_trades``; the service reports them in its health, so shedding is never
silent.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable

from helios_pipeline.domain.ticks import Tick


class TickQueue:
    """Bounded two-lane tick queue (see the module docstring).

    Not thread-safe: offer and take from the event loop's thread.

    Args:
        capacity: Ticks queued before shedding starts (at least 1).
        trade_headroom: Extra room for trades once the queue is full (default: a quarter of
            ``capacity``, at least 1).
        on_shed: Called with every shed tick (after it is counted).
    """

    def __init__(self, capacity: int, trade_headroom: int | None = None,
                 on_shed: Callable[[Tick], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"Queue capacity {capacity} must be at least 1 tick.")
        headroom = max(1, capacity // 4) if trade_headroom is None else trade_headroom
        if headroom < 0:
            raise ValueError(f"trade_headroom={headroom} must be 0 or more.")
        self.capacity = capacity
        self.trade_headroom = headroom
        self._trades: deque[Tick] = deque()
        self._quotes: deque[Tick] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self.shed: dict[str, Counter[str]] = {}
        self.shed_trades = 0
        self.shed_quotes = 0
        self.offered = 0
        self.high_water = 0
        self._on_shed = on_shed

    def __len__(self) -> int:
        """Ticks queued now (both lanes)."""
        return len(self._trades) + len(self._quotes)

    def offer(self, tick: Tick) -> None:
        """Queue a tick, shedding by the policy when the queue is full (never blocks)."""
        self.offered += 1
        size = len(self._trades) + len(self._quotes)
        is_trade = tick.kind == "trade"
        if size >= self.capacity:
            if self._quotes:
                self._count_shed(self._quotes.popleft())
            elif not is_trade:
                self._count_shed(tick)
                return
            elif size >= self.capacity + self.trade_headroom:
                self._count_shed(self._trades.popleft())
        (self._trades if is_trade else self._quotes).append(tick)
        self.high_water = max(self.high_water, size + 1)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _count_shed(self, tick: Tick) -> None:
        counter = self.shed.get(tick.symbol)
        if counter is None:
            counter = self.shed[tick.symbol] = Counter()
        counter[tick.kind] += 1
        if tick.kind == "trade":
            self.shed_trades += 1
        else:
            self.shed_quotes += 1
        if self._on_shed is not None:
            self._on_shed(tick)

    @property
    def shed_total(self) -> int:
        """Every tick shed so far."""
        return self.shed_trades + self.shed_quotes

    def take(self, max_items: int) -> list[Tick]:
        """Up to ``max_items`` queued ticks, trades first, each lane oldest first."""
        batch: list[Tick] = []
        for lane in (self._trades, self._quotes):
            while lane and len(batch) < max_items:
                batch.append(lane.popleft())
        return batch

    async def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until a tick is queued (or ``timeout_s`` passed); returns whether one is.

        The waiter is a bare future that :meth:`offer` completes, so the consumer resumes in
        the very next turn of the event loop (``asyncio.wait_for`` on an ``Event`` takes three).
        """
        if self._trades or self._quotes:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout_s is None else loop.call_later(timeout_s, _expire, waiter)
        try:
            return bool(await waiter)
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def oldest_trade_received_us(self) -> int | None:
        """Receive time of the oldest queued trade, if any."""
        return self._trades[0].received_ts_us if self._trades else None


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
