"""The stream service's live indicators: every symbol and timeframe, warm-started, in Redis.

:class:`LiveIndicators` receives the live 1m candles :class:`~helios_pipeline.realtime.live.
LiveCandles` emits, keeps a :class:`~helios_pipeline.realtime.indicator_series.SymbolIndicators`
per symbol, and on each closed candle of a timeframe hands the new values to the
:class:`~helios_pipeline.storage.hot.live_indicators.HotIndicatorWriter` (one Redis hash per
symbol and timeframe). Nothing here runs per tick: only when a candle closes, and the clock
check is one comparison until the next candle is due.

Warm start (:meth:`LiveIndicators.warm_start`): before streaming, each series is fed the stored
candles of the last ``warmup`` candle lengths (daily files and the live candles Redis still
holds, through :class:`~helios_pipeline.query.candles.CandleReader`, exactly what
``MarketDataQuery.ohlcv`` reads), and the open bucket is started from its stored minutes. The
next live value is then the batch value over the stored candles plus the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import redis

from helios_pipeline.domain.columns import CLOSE, HIGH, LOW, TIMESTAMP
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.query.candles import CandleReader
from helios_pipeline.query.sources import Span
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.indicator_series import Bar, LiveSeries, SymbolIndicators, Update
from helios_pipeline.signals.frame import DEFAULT_PARAMS, IndicatorParams
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.hot.live_indicators import HotIndicatorWriter
from helios_pipeline.storage.hot.store import HotStore

log = logging.getLogger(__name__)


def parse_timeframes(names: Iterable[str]) -> tuple[Timeframe, ...]:
    """Stored timeframes by name, checked.

    Raises:
        ValueError: A name is not one of 1m 5m 15m 1h 4h 1d.
    """
    return tuple(dict.fromkeys(Timeframe.parse(name) for name in names))


def table_bars(table: pa.Table) -> list[Bar]:
    """The bars of a candle table (open time, high, low, close), oldest first."""
    opens = table.column(TIMESTAMP).cast(pa.int64()).to_pylist()
    return [Bar(*row) for row in zip(opens, table.column(HIGH).to_pylist(),
                                     table.column(LOW).to_pylist(),
                                     table.column(CLOSE).to_pylist(), strict=True)]


class LiveIndicators:
    """Live indicators of the streamed symbols (see the module docstring).

    Args:
        symbols: ccxt unified symbols.
        timeframes: Timeframes to keep (1m and longer stored ones).
        writer: Where new values go (Redis).
        late_tolerance_ms: The live candles' amendment window: a minute is used once it is over.
        params: Indicator periods.
    """

    def __init__(self, symbols: Iterable[str], timeframes: Iterable[Timeframe],
                 writer: HotIndicatorWriter, late_tolerance_ms: int,
                 params: IndicatorParams = DEFAULT_PARAMS) -> None:
        self.timeframes = tuple(timeframes)
        self.writer = writer
        self.symbols = {
            s: SymbolIndicators([LiveSeries(tf.value, tf.ms, params) for tf in self.timeframes],
                                late_tolerance_ms)
            for s in symbols}
        self.updates = 0
        self._due_ms: int | None = None

    def warm_start(self, reader: CandleReader, now_ms: int, warmup: int) -> int:
        """Feed every series the stored candles before ``now_ms``; returns how many were fed.

        Args:
            reader: Stored candles (daily files, intraday file, Redis's live candles).
            now_ms: The service's start: candles closed by then are stored ones.
            warmup: Candle lengths of history to feed per timeframe.
        """
        fed = 0
        for symbol, state in self.symbols.items():
            last_minute: int | None = None
            for series in state.series:
                last_minute = max(last_minute or -1, self._warm(reader, symbol, series, now_ms,
                                                                warmup) or -1)
                fed += series.fed
            state.started(last_minute if last_minute is not None and last_minute >= 0 else None)
        self._reschedule()
        return fed

    def _warm(self, reader: CandleReader, symbol: str, series: LiveSeries, now_ms: int,
              warmup: int) -> int | None:
        """Warm one series; returns the open time of the last stored minute it used."""
        length = series.length_ms
        bucket_start = now_ms - now_ms % length
        start = bucket_start - warmup * length
        closed = table_bars(reader.read(symbol, Timeframe.parse(series.timeframe),
                                        Span(start, now_ms), None))
        partial = ([] if length == MINUTE_MS else
                   table_bars(reader.read(symbol, Timeframe.M1, Span(bucket_start, now_ms),
                                          None)))
        update = series.warm(closed, partial)
        if update is not None:
            self._write(symbol, update)
        minutes = [b.open_ms for b in partial] or [
            b.open_ms + length - MINUTE_MS for b in closed[-1:]]
        return max(minutes) if minutes else None

    def on_candles(self, candles: Iterable[LiveCandle]) -> None:
        """Closed or amended live candles (kept until they are final)."""
        for candle in candles:
            state = self.symbols.get(candle.symbol)
            if state is not None:
                state.on_candle(candle)
                due = candle.open_ms + MINUTE_MS + state.late_tolerance_ms + 1
                self._due_ms = due if self._due_ms is None else min(self._due_ms, due)

    def finalize(self, clock_ms: int) -> int:
        """Use the candles final at ``clock_ms``; returns how many candle values were updated."""
        if self._due_ms is None or clock_ms < self._due_ms:
            return 0
        count = 0
        for symbol, state in self.symbols.items():
            for update in state.finalize(clock_ms):
                self._write(symbol, update)
                count += 1
        self._reschedule()
        self.updates += count
        return count

    def _reschedule(self) -> None:
        dues = [d for state in self.symbols.values() if (d := state.due_ms()) is not None]
        self._due_ms = min(dues) if dues else None

    def _write(self, symbol: str, update: Update) -> None:
        self.writer.add(symbol, update.timeframe, update.open_ms,
                        {"close": float(update.close), **update.indicators})

    async def flush(self) -> None:
        """Write pending values to Redis (kept for the next flush if Redis fails)."""
        await self.writer.flush()


def warm_start(indicators: LiveIndicators, data_dir: Path, redis_url: str, exchange: str,
               retention_ms: int, now_ms: int, warmup: int) -> int:
    """:meth:`LiveIndicators.warm_start` from the data root and Redis; returns candles fed.

    Redis being down is not fatal: the warm start then uses the files alone (logged), and the
    values equal the batch ones again once the indicators' longest memory has passed.
    """
    hot = HotStore(redis_url, retention_ms, exchange=exchange, socket_timeout_s=2.0)

    held: dict[str, list[LiveCandle]] = {}  # one Redis read per symbol, whatever the timeframes
    down: list[BaseException] = []  # after one failure, files only: no timeout per symbol

    def live(symbol: str) -> list[LiveCandle]:
        if symbol not in held:
            held.clear()  # the reads go symbol by symbol: keep one symbol's candles only
            held[symbol] = []
            if not down:
                try:
                    held[symbol] = hot.live_candles(symbol)
                except (redis.RedisError, OSError) as exc:
                    log.warning("Warm start of the live indicators without Redis's live "
                                "candles (files only): %r.", exc)
                    down.append(exc)
        return held[symbol]

    reader = CandleReader(CandleStore(data_dir), live, retention_ms, lambda: now_ms)
    try:
        return indicators.warm_start(reader, now_ms, warmup)
    finally:
        hot.close()


async def start_live_indicators(config: StreamConfig, now_ms: int) -> LiveIndicators | None:
    """The stream service's live indicators, warm-started from the stored candles.

    ``None`` when ``config.indicator_timeframes`` is empty. The warm start runs in a worker
    thread, before the feeds start.
    """
    if not config.indicator_timeframes:
        return None
    indicators = LiveIndicators(
        config.symbols, parse_timeframes(config.indicator_timeframes),
        HotIndicatorWriter(config.redis_url, config.exchange, config.hot_retention_ms),
        config.late_tolerance_ms)
    fed = await asyncio.to_thread(warm_start, indicators, config.data_dir, config.redis_url,
                                  config.exchange, config.hot_retention_ms, now_ms,
                                  config.indicator_warmup)
    log.info("Live indicators (%s) warm-started from %d stored candles.",
             ",".join(config.indicator_timeframes), fed)
    return indicators
