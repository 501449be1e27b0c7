"""Klines and trades as the REST API serves them, on top of the 1m sources in ``market``.

:class:`MarketFeed` routes each symbol to its source (a symbol with recordings is served only
from them; every other symbol from the seeded market), builds longer intervals from 1m klines,
applies data faults, hides klines that open after "now" and serves the kline that is still open
at "now" as it looks at that moment (built from the synthetic trades so far, as Binance does).
It also walks the synthetic trade tape for ``aggTrades`` and ``trades``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS
from helios_pipeline.sim.market.candles import CandlePatch, KlineBlock
from helios_pipeline.sim.market.sources import (
    FIRST_DAY,
    LAST_DAY,
    ReplayMarket,
    SeededMarket,
    _Lru,
)
from helios_pipeline.sim.market.trades import (
    ID_STRIDE,
    MinuteTrades,
    agg_trade_count,
    minute_trades,
    partial_kline,
)
from helios_pipeline.sim.market.universe import symbol_spec

PatchLookup = Callable[[str, int, int], tuple[CandlePatch, ...]]
"""``(symbol, start_ms, end_ms) -> data faults`` touching 1m klines opening in that range."""


def no_patches(symbol: str, start_ms: int, end_ms: int) -> tuple[CandlePatch, ...]:
    """The :data:`PatchLookup` of a market without data faults."""
    return ()


class MarketFeed:
    """Binance-shaped kline windows and trade tapes for every symbol."""

    def __init__(self, replay: ReplayMarket | None = None, seeded: SeededMarket | None = None,
                 cache_blocks: int = 1024) -> None:
        """Serve ``replay``'s symbols from their recordings and all others from ``seeded``."""
        self.replay = replay
        self.seeded = seeded or SeededMarket()
        self._blocks = _Lru(cache_blocks)
        self._tapes: OrderedDict[tuple[str, int], MinuteTrades] = OrderedDict()

    def is_replayed(self, symbol: str) -> bool:
        """Whether ``symbol`` is served from recorded files."""
        return self.replay is not None and symbol in self.replay.symbols

    def day_1m(self, symbol: str, day: int) -> KlineBlock:
        """All 1m klines of ``day`` from the symbol's source, as recorded or generated."""
        if self.replay is not None and symbol in self.replay.symbols:
            return self.replay.day(symbol, day)
        return self.seeded.day(symbol, day)

    def next_day(self, symbol: str, day: int) -> int | None:
        """First day ``>= day`` that may hold klines of ``symbol``."""
        if self.replay is not None and symbol in self.replay.symbols:
            return self.replay.next_day(symbol, day)
        return max(day, FIRST_DAY) if day <= LAST_DAY else None

    def previous_day(self, symbol: str, day: int) -> int | None:
        """Last day ``<= day`` that may hold klines of ``symbol``."""
        if self.replay is not None and symbol in self.replay.symbols:
            return self.replay.previous_day(symbol, day)
        return min(day, LAST_DAY) if day >= FIRST_DAY else None

    # ----------------------------------------------------------------------------- klines

    def klines(self, symbol: str, interval_ms: int, *, start_ms: int | None, end_ms: int | None,
               limit: int, now_ms: int, patches: PatchLookup = no_patches) -> list[bytes]:
        """Encoded klines exactly as ``/api/v3/klines`` answers.

        Klines whose open time is in ``[start_ms, end_ms]`` (and not after ``now_ms``),
        ascending, at most ``limit``: the first ones when ``start_ms`` is given, else the most
        recent ones up to ``end_ms`` (or now).
        """
        last_open = now_ms if end_ms is None else min(end_ms, now_ms)
        if start_ms is not None:
            return self._forward(symbol, interval_ms, max(start_ms, 0), last_open, limit, now_ms,
                                 patches)
        return self._backward(symbol, interval_ms, last_open, limit, now_ms, patches)

    def _forward(self, symbol: str, interval_ms: int, start_ms: int, last_open: int, limit: int,
                 now_ms: int, patches: PatchLookup) -> list[bytes]:
        out: list[bytes] = []
        day = self.next_day(symbol, start_ms // DAY_MS)
        while day is not None and day * DAY_MS <= last_open and len(out) < limit:
            block = self._block(symbol, day, interval_ms, now_ms, patches)
            lo = int(np.searchsorted(block.open_ms, start_ms, side="left"))
            hi = int(np.searchsorted(block.open_ms, last_open, side="right"))
            out.extend(block.row_range(lo, min(hi, lo + limit - len(out))))
            day = self.next_day(symbol, day + 1)
        return out

    def _backward(self, symbol: str, interval_ms: int, last_open: int, limit: int, now_ms: int,
                  patches: PatchLookup) -> list[bytes]:
        chunks: list[list[bytes]] = []
        total = 0
        day = self.previous_day(symbol, last_open // DAY_MS) if last_open >= 0 else None
        while day is not None and total < limit:
            block = self._block(symbol, day, interval_ms, now_ms, patches)
            hi = int(np.searchsorted(block.open_ms, last_open, side="right"))
            rows = block.row_range(max(0, hi - (limit - total)), hi)
            chunks.append(rows)
            total += len(rows)
            day = self.previous_day(symbol, day - 1)
        return [row for chunk in reversed(chunks) for row in chunk]

    def _block(self, symbol: str, day: int, interval_ms: int, now_ms: int,
               patches: PatchLookup) -> KlineBlock:
        start = day * DAY_MS
        found = patches(symbol, start, start + DAY_MS)
        if now_ms < start + DAY_MS:  # the day is not over: build it as of now, uncached
            return self._derive(symbol, self.minutes_of_day(symbol, day, now_ms), found,
                                interval_ms)
        if not found and interval_ms == MINUTE_MS:
            return self.day_1m(symbol, day)
        return self._blocks.get((symbol, day, interval_ms, found), lambda: self._derive(
            symbol, self.day_1m(symbol, day), found, interval_ms))

    @staticmethod
    def _derive(symbol: str, block: KlineBlock, patches: tuple[CandlePatch, ...],
                interval_ms: int) -> KlineBlock:
        if patches:
            block = block.patched(patches, symbol_spec(symbol).tick_units)
        return block.aggregate(interval_ms)

    def minutes_of_day(self, symbol: str, day: int, now_ms: int) -> KlineBlock:
        """The 1m klines of ``day`` opened by ``now_ms``; the last one as of ``now_ms``."""
        full = self.day_1m(symbol, day)
        block = full.until(now_ms)
        if not len(block) or block.kline(len(block) - 1).close_ms < now_ms:
            return block
        last = len(block) - 1
        return block.with_last(partial_kline(full.kline(last), self.tape(symbol, full, last),
                                             now_ms))

    def minutes(self, symbol: str, start_ms: int, now_ms: int) -> KlineBlock:
        """Unpatched 1m klines opening in ``[start_ms, now_ms]``; the last one as of now."""
        blocks = [self.minutes_of_day(symbol, day, now_ms)
                  for day in range(max(start_ms, 0) // DAY_MS, now_ms // DAY_MS + 1)]
        block = KlineBlock.concat(blocks)
        lo = int(np.searchsorted(block.open_ms, start_ms, side="left"))
        return block.take(slice(lo, None)) if lo else block

    # ----------------------------------------------------------------------------- trades

    def tape(self, symbol: str, day_block: KlineBlock, index: int) -> MinuteTrades:
        """The aggregate trades of kline ``index`` of a full-day 1m block (cached)."""
        k = day_block.kline(index)
        key = (symbol, k.open_ms)
        found = self._tapes.get(key)
        if found is not None:
            return found
        counts = day_block.cols["trades"][:index]
        day_base = (k.open_ms // DAY_MS) * ID_STRIDE
        found = minute_trades(symbol_spec(symbol), k,
                              first_agg_id=day_base + int(agg_trade_count(counts).sum()),
                              first_trade_id=day_base + int(counts.sum()))
        self._tapes[key] = found
        if len(self._tapes) > 256:
            self._tapes.popitem(last=False)
        return found

    def _walk(self, symbol: str, day: int | None, index: int,
              step: int) -> Iterator[tuple[int, MinuteTrades]]:
        """``(open_ms, tape)`` per minute from ``(day, index)`` on, forwards or backwards.

        ``index=-1`` starts at the last minute of ``day``; ``step`` is 1 or -1.
        """
        while day is not None:
            block = self.day_1m(symbol, day)
            index = len(block) - 1 if index < 0 else index
            while 0 <= index < len(block):
                yield int(block.open_ms[index]), self.tape(symbol, block, index)
                index += step
            if step > 0:
                day, index = self.next_day(symbol, day + 1), 0
            else:
                day, index = self.previous_day(symbol, day - 1), -1

    def _start_of(self, symbol: str, from_id: int | None,
                  start_ms: int) -> tuple[int | None, int]:
        """Where a forward walk starts: the minute holding ``from_id`` or ``start_ms``."""
        day = from_id // ID_STRIDE if from_id is not None else start_ms // DAY_MS
        first = self.next_day(symbol, day)
        if first != day or first is None:
            return first, 0
        block = self.day_1m(symbol, day)
        if from_id is not None:
            cum = np.cumsum(agg_trade_count(block.cols["trades"]))
            return day, int(np.searchsorted(cum, from_id % ID_STRIDE, side="right"))
        return day, max(0, int(np.searchsorted(block.open_ms, start_ms, side="right")) - 1)

    def agg_trades(self, symbol: str, *, start_ms: int | None, end_ms: int | None,
                   from_id: int | None, limit: int, now_ms: int) -> list[dict[str, Any]]:
        """``/api/v3/aggTrades`` objects: from ``from_id`` or ``start_ms``, else the latest.

        Trades after ``end_ms`` (or after now) are never returned.
        """
        stop = now_ms if end_ms is None else min(end_ms, now_ms)
        if from_id is None and start_ms is None:
            return self._latest(symbol, stop, limit, fills=False)
        earliest = max(0, start_ms or 0)
        lowest_id = from_id or 0
        day, index = self._start_of(symbol, from_id, earliest)
        out: list[dict[str, Any]] = []
        for open_ms, tape in self._walk(symbol, day, index, 1):
            if len(out) >= limit or open_ms > stop:
                break
            keep = np.flatnonzero((tape.time >= earliest) & (tape.time <= stop)
                                  & (tape.agg_id >= lowest_id))
            if len(keep):
                out.extend(tape.agg_json(int(keep[0]), int(keep[-1]) + 1)[: limit - len(out)])
        return out

    def _latest(self, symbol: str, stop: int, limit: int, *, fills: bool) -> list[dict[str, Any]]:
        """The last ``limit`` aggregate trades (or fills) at or before ``stop``, ascending."""
        day = self.previous_day(symbol, stop // DAY_MS) if stop >= 0 else None
        index = -1
        if day is not None and day == stop // DAY_MS:
            index = int(np.searchsorted(self.day_1m(symbol, day).open_ms, stop, "right")) - 1
            if index < 0:
                day = self.previous_day(symbol, day - 1)
        chunks: list[list[dict[str, Any]]] = []
        total = 0
        for _, tape in self._walk(symbol, day, index, -1):
            n = tape.count_until(stop)
            rows = tape.fill_json(0, n) if fills else tape.agg_json(0, n)
            chunks.append(rows[max(0, len(rows) - (limit - total)):])
            total += len(chunks[-1])
            if total >= limit:
                break
        return [row for chunk in reversed(chunks) for row in chunk]

    def recent_trades(self, symbol: str, limit: int, now_ms: int) -> list[dict[str, Any]]:
        """``/api/v3/trades`` objects: the last ``limit`` fills at or before ``now_ms``."""
        return self._latest(symbol, now_ms, limit, fills=True)
