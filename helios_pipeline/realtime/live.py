"""The stream service's live 1m candles: one builder per symbol, written to the hot tier.

:class:`LiveCandles` feeds acknowledged trades to each symbol's
:class:`~helios_pipeline.realtime.candles.LiveCandleBuilder`, tells the builders about feed
outages and trades lost under backpressure (their candles are then incomplete), closes minutes
on the service's candle clock and hands every emitted candle to the
:class:`~helios_pipeline.storage.hot.live_candles.HotCandleWriter` and, when the service keeps
them, to the live indicators (:mod:`helios_pipeline.realtime.live_indicators`). It holds no clock
of its own: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.realtime.candles import LiveCandleBuilder
from helios_pipeline.realtime.live_indicators import LiveIndicators
from helios_pipeline.storage.hot.live_candles import HotCandleWriter


class LiveCandles:
    """Live candles of the streamed symbols (see the module docstring).

    Args:
        symbols: ccxt unified symbols.
        writer: Where emitted candles go (Redis).
        late_tolerance_ms: Late trades arriving within this of their minute's end amend it.
        started_ms: When streaming began: the first minutes are complete only once the trade
            feed delivers.
    """

    def __init__(self, symbols: Iterable[str], writer: HotCandleWriter, late_tolerance_ms: int,
                 started_ms: int) -> None:
        self.writer = writer
        self.builders = {s: LiveCandleBuilder(s, late_tolerance_ms) for s in symbols}
        for builder in self.builders.values():
            builder.outage_began(started_ms)
        self.closed = 0
        self.amended = 0
        self.indicators: LiveIndicators | None = None  # set by the service when it keeps them

    def apply(self, trades: Iterable[Tick]) -> None:
        """Add acknowledged trades to their minutes; emit what closes or is amended."""
        emitted: list[LiveCandle] = []
        for tick in trades:
            if tick.kind != "trade" or tick.price is None or tick.qty is None:
                continue
            builder = self.builders.get(tick.symbol)
            if builder is not None:
                emitted += builder.add(tick.exchange_ts_ms, tick.price, tick.qty,
                                       tick.received_ts_us // 1000)
        self._emit(emitted)

    def close_due(self, clock_ms: int) -> int:
        """Close the minutes whose end ``clock_ms`` passed; returns how many candles emitted."""
        emitted: list[LiveCandle] = []
        for builder in self.builders.values():
            emitted += builder.close_due(clock_ms)
        self._emit(emitted)
        if self.indicators is not None:
            self.indicators.finalize(clock_ms)
        return len(emitted)

    def outage(self, symbols: Iterable[str], now_ms: int, *, began: bool) -> None:
        """A trade feed of ``symbols`` lost (``began``) or regained its connection at ``now_ms``."""
        for symbol in symbols:
            builder = self.builders.get(symbol)
            if builder is not None:
                (builder.outage_began if began else builder.outage_ended)(now_ms)

    def lost(self, tick: Tick) -> None:
        """A trade that will never reach its candle (shed, or its write failed)."""
        builder = self.builders.get(tick.symbol) if tick.kind == "trade" else None
        if builder is not None:
            builder.mark_missing(tick.exchange_ts_ms)

    async def flush(self) -> None:
        """Write pending candles to Redis (kept for the next flush if Redis fails)."""
        await self.writer.flush()
        if self.indicators is not None:
            await self.indicators.flush()

    async def aclose(self) -> None:
        """Close the Redis connections of the candle and indicator writers."""
        await self.writer.aclose()
        if self.indicators is not None:
            await self.indicators.writer.aclose()

    def late_trades(self, symbol: str | None = None) -> int:
        """Trades that arrived too late to amend their candle (all symbols, or one)."""
        if symbol is not None:
            builder = self.builders.get(symbol)
            return 0 if builder is None else builder.late_trades
        return sum(b.late_trades for b in self.builders.values())

    def _emit(self, candles: list[LiveCandle]) -> None:
        if candles:
            self.closed += sum(1 for c in candles if not c.amended)
            self.amended += sum(1 for c in candles if c.amended)
            self.writer.add(candles)
            if self.indicators is not None:
                self.indicators.on_candles(candles)
