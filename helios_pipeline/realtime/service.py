"""``StreamService``: exchange websockets -> validated ticks in Redis within milliseconds.

Data path (one asyncio event loop, one worker thread for blocking writes)::

    ccxt.pro feeds (realtime.feeds: one connection per kind and <= 200 symbols)
      -> Tick (received_ts_us) -> TickQueue (bounded; sheds quotes first, counts every shed)
      -> writer loop: batches of <= batch_max, in a worker thread, one at a time:
           TickValidator per (symbol, kind) -> valid: DurableTickWriter (ack = fsynced in the
           WAL; its pusher thread moves them into Redis exactly once, surviving Redis outages)
                                            -> invalid: live quarantine (rules + values)
      -> acknowledged trades -> LiveCandles, a builder per symbol -> Redis (storage.hot)
           -> closed candles -> LiveIndicators (1m, 5m, 1h; warm-started from stored candles)
              -> Redis hash per symbol x timeframe (storage.hot.live_indicators)
    with a reference venue: its tickers polled (realtime.divergence_watch) -> each tick validated
      against its price (flagged above 5 %) -> one alert per divergence episode, state in Redis

Background loops: the watchdog (every 0.5 s: feeds silent for ``stall_timeout_s`` are forced to
reconnect), candles (every ``candle_check_s``: minutes whose end the clock passed close), health
(every ``health_interval_s``: :meth:`StreamService.health` to ``storage.hot.health``).

The candle clock is the wall clock held back to the receive time of the oldest trade not yet
written, so a minute closes only once every trade received before its end was applied.

Stopping (:meth:`StreamService.stop`, or SIGINT/SIGTERM under :meth:`StreamService.run`): the
feeds close (a connection whose close does not finish within the stop timeout is abandoned, with
a warning), the queue is drained into the writer, pending candles are written, the writer
flushes to Redis (what Redis cannot take stays in the WAL for the next start) and the WAL is
closed; the last health is published with ``status=stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

import ccxt

from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.divergence_watch import start_divergence_watch
from helios_pipeline.realtime.feeds import Feed, make_exchange
from helios_pipeline.realtime.health import StreamStats
from helios_pipeline.realtime.live import LiveCandles
from helios_pipeline.realtime.live_indicators import start_live_indicators
from helios_pipeline.realtime.pipeline import TickPipeline
from helios_pipeline.realtime.queue import TickQueue
from helios_pipeline.storage.hot.health import HealthPublisher
from helios_pipeline.storage.hot.keys import health_key
from helios_pipeline.storage.hot.live_candles import HotCandleWriter
from helios_pipeline.storage.hot.wal_files import WalError
from helios_pipeline.storage.hot.writer import Ack, WriterError

log = logging.getLogger(__name__)

MAX_PENDING_MALFORMED = 10_000
_WATCHDOG_S = 0.5


class StreamServiceError(RuntimeError):
    """The service cannot start; the message says what is wrong and what to do."""


class StreamService:
    """The long-running stream service (see the module docstring).

    Args:
        config: What to stream and where to.
        clock_ns: The wall clock: receipt times, candle closes, lag (tests may warp it along
            with the simulated exchange's market clock).
    """

    def __init__(self, config: StreamConfig, *,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self._clock_ns = clock_ns
        self.source = f"{config.exchange}@{config.ws_url or config.base_url or 'exchange'}"
        self.stats = StreamStats(config.symbols)
        self.queue = TickQueue(config.queue_size, config.trade_headroom, on_shed=self._on_shed)
        self.pipeline = TickPipeline(config, self.source)
        self.divergence = start_divergence_watch(config, clock_ns)
        self.pipeline.divergence = None if self.divergence is None else self.divergence.watch
        self.feeds: list[Feed] = []
        self.candles: LiveCandles | None = None
        self.publisher = HealthPublisher(
            config.redis_url, health_key(config.exchange, config.shard_suffix),
            ttl_s=max(30.0, 10 * config.health_interval_s))
        self.status = "created"
        self.started_at_ms: int | None = None
        self.replayed = 0
        self.write_failures = 0
        self.write_failed_ticks = 0
        self.loop_errors = 0
        self._malformed: list[QuarantineRecord] = []
        self._malformed_dropped = 0
        self._inflight_oldest_us: int | None = None
        self._inflight = 0
        self._malformed_inflight = 0
        self._ticks_per_s = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._feed_tasks: list[asyncio.Task[None]] = []
        self._stop_requested = asyncio.Event()
        self._writer_done = asyncio.Event()
        self._rate_mark = (time.monotonic(), 0)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check the symbols, open the writer (replaying what Redis lacks), start streaming.

        Raises:
            StreamServiceError: The exchange is unreachable, a symbol is unknown, or the WAL is
                locked by another process.
        """
        markets = await self._load_markets()
        try:
            self.replayed = await asyncio.to_thread(self.pipeline.open)
        except WalError as exc:
            raise StreamServiceError(f"Cannot open the write-ahead log: {exc}") from exc
        now = self._now_ms()
        self.started_at_ms = now
        if self.config.candles:
            writer = HotCandleWriter(self.config.redis_url, self.config.exchange,
                                     self.config.hot_retention_ms)
            self.candles = LiveCandles(self.config.symbols, writer,
                                       self.config.late_tolerance_ms, now)
            self.candles.indicators = await start_live_indicators(self.config, now)
        # Everything loaded so far (modules, markets, warm-start state) lives as long as the
        # service: out of the collector's sight, full collections stay short on the event loop.
        gc.collect()
        gc.freeze()
        self._build_feeds(markets)
        self._feed_tasks = [asyncio.create_task(f.run(), name=f"feed-{f.name}")
                            for f in self.feeds]
        self._tasks = [self._spawn(self._write_loop(), "writer"),
                       self._spawn(self._watchdog_loop(), "watchdog"),
                       self._spawn(self._candle_loop(), "candles"),
                       self._spawn(self._health_loop(), "health")]
        if self.divergence is not None:
            self._tasks.append(self._spawn(self.divergence.run(self._stop_requested), "divergence"))
        self.status = "running"
        log.info("Streaming %d symbols (%s) from %s; %d logged ticks replayed to Redis.",
                 len(self.config.symbols), ",".join(self.config.kinds), self.source,
                 self.replayed)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coro, name=f"stream-{name}")

    async def _load_markets(self) -> Any:
        """Markets of the exchange, checking every configured symbol is a listed spot market."""
        exchange = make_exchange(self.config.exchange, self.config.base_url,
                                 self.config.market_types)
        try:
            await exchange.load_markets()
        except ccxt.BaseError as exc:
            raise StreamServiceError(
                f"Cannot load the markets of {self.config.exchange} at "
                f"{self.config.base_url or 'its own URL'}: {exc}. Check HELIOS_EXCHANGE_URL and "
                "that the exchange (or `helios sim-exchange`) is running.") from exc
        finally:
            await exchange.close()
        unknown = [s for s in self.config.symbols
                   if not (exchange.markets.get(s) or {}).get("spot")]
        if unknown:
            raise StreamServiceError(
                f"Not spot markets of {self.config.exchange}: {', '.join(unknown)}. Use ccxt "
                "unified symbols the exchange lists, such as BTC/USDT.")
        return exchange

    def _build_feeds(self, loaded: Any) -> None:
        cfg = self.config
        size = cfg.symbols_per_connection
        chunks = [cfg.symbols[i:i + size] for i in range(0, len(cfg.symbols), size)]
        for kind in cfg.kinds:
            for index, chunk in enumerate(chunks):
                exchange = make_exchange(cfg.exchange, cfg.base_url, cfg.market_types,
                                         cfg.ws_url)
                exchange.set_markets(loaded.markets, loaded.currencies)
                self.feeds.append(Feed(f"{kind}#{index}", kind, chunk, exchange, self,
                                       (cfg.backoff_base_s, cfg.backoff_cap_s),
                                       cfg.stall_timeout_s, self._clock_ns))

    def _now_ms(self) -> int:
        return self._clock_ns() // 1_000_000

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop (safe from a signal handler)."""
        self._stop_requested.set()

    async def run(self, duration_s: float | None = None, *, handle_signals: bool = True) -> None:
        """Start, stream until stopped (signal, :meth:`request_stop` or ``duration_s``), stop.

        Raises:
            StreamServiceError: The service could not start.
        """
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for signum in signals:
            loop.add_signal_handler(signum, self.request_stop)
        try:
            await self.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), duration_s)
        finally:
            await self.stop()
            for signum in signals:
                loop.remove_signal_handler(signum)

    async def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop gracefully (see the module docstring).

        Args:
            timeout_s: How long each step may take: closing the feeds, draining the queue,
                flushing the writer to Redis.

        Returns:
            Whether Redis held every acknowledged tick when the writer closed.
        """
        if self.status in ("stopping", "stopped"):
            return True
        self.status = "stopping"
        await self._close_feeds(timeout_s)
        self._stop_requested.set()
        if self._tasks:  # let the writer drain the queue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._writer_done.wait(), timeout_s)
        await self._end_tasks(timeout_s)
        await self._flush_candles()
        caught_up = await asyncio.to_thread(self.pipeline.close, timeout_s)
        self.status = "stopped"
        if self.started_at_ms is not None:  # a service that never started owns no health
            await self.publisher.publish(self.health())
        await self.publisher.aclose()
        if self.candles is not None:
            await self.candles.aclose()
        if self.divergence is not None:
            await self.divergence.aclose()
        log.info("Stream service stopped; Redis %s.", "caught up" if caught_up else
                 "lags: the rest stays in the WAL and is replayed on the next start")
        return caught_up

    async def _close_feeds(self, timeout_s: float) -> None:
        """Close the feeds' connections and end their tasks, giving up after ``timeout_s``.

        Closing a websocket waits for the exchange's close handshake; a connection that never
        completes it must not keep the service from writing what it acknowledged, so after
        ``timeout_s`` the rest is abandoned (the exchange sees the socket drop) with a warning
        that shows where each unfinished task waits.
        """
        async def close() -> None:
            await asyncio.gather(*(f.stop() for f in self.feeds))
            for task in self._feed_tasks:
                task.cancel()
            await asyncio.gather(*self._feed_tasks, return_exceptions=True)

        closing = asyncio.ensure_future(close())
        done, _ = await asyncio.wait({closing}, timeout=timeout_s)
        if done:
            closing.result()
            return
        stacks = io.StringIO()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and not task.done():
                task.print_stack(limit=8, file=stacks)
        closing.cancel()
        for task in self._feed_tasks:
            task.cancel()
        log.warning("Stopping: the feeds' connections did not close within %.0f s; going on "
                    "without them. Unfinished tasks:\n%s", timeout_s, stacks.getvalue())

    # ------------------------------------------------------------------ feed sink

    def on_tick(self, tick: Tick) -> None:
        """Count and queue a tick from a feed (ccxt's socket callback: never blocks)."""
        self.stats.on_tick(tick)
        self.queue.offer(tick)

    def on_malformed(self, feed: Feed, symbol: str | None, raw: object, reason: str) -> None:
        """Count a malformed frame; quarantine it under its symbol, else log it."""
        self.stats.on_malformed(symbol, self._now_ms())
        if symbol is None:
            count = self.stats.malformed_unattributed
            if count <= 10 or count % 1000 == 0:
                log.warning("Malformed frame on feed %s (no symbol to file it under; %d so far):"
                            " %s; frame %.200r", feed.name, count, reason, raw)
            return
        if len(self._malformed) >= MAX_PENDING_MALFORMED:
            self._malformed_dropped += 1
            return
        self._malformed.append(QuarantineRecord.create(
            symbol, feed.kind, None, ("malformed_row",), {"error": reason}, raw, self.source))

    def on_lost(self, feed: Feed, now_ms: int) -> None:
        """A feed lost its connection: candles of the outage may miss trades."""
        if feed.kind == "trade" and self.candles is not None:
            self.candles.outage(feed.symbols, now_ms, began=True)

    def on_recovered(self, feed: Feed, down_since_ms: int, now_ms: int) -> None:
        """A feed delivers (again): trades may be missing only up to now."""
        if feed.kind == "trade" and self.candles is not None:
            self.candles.outage(feed.symbols, now_ms, began=False)

    def _on_shed(self, tick: Tick) -> None:
        if self.candles is not None:
            self.candles.lost(tick)

    # ------------------------------------------------------------------ loops

    async def _write_loop(self) -> None:
        """Move queued ticks through the pipeline until stopped and drained."""
        try:
            while not (self._stop_requested.is_set() and not len(self.queue)
                       and not self._malformed):
                if not await self.queue.wait(0.2) and not self._malformed:
                    continue
                batch = self.queue.take(self.config.batch_max)
                malformed, self._malformed = self._malformed, []
                self._malformed_inflight = len(malformed)
                trades = [t.received_ts_us for t in batch if t.kind == "trade"]
                self._inflight_oldest_us = min(trades) if trades else None
                self._inflight = len(batch)
                ack = await asyncio.to_thread(self._process, batch, malformed)
                self._inflight, self._inflight_oldest_us = 0, None
                self._malformed_inflight = 0
                if ack is None:  # lost: the candles of these trades' minutes are incomplete
                    for tick in batch:
                        self._on_shed(tick)
                elif self.candles is not None:
                    self._guarded("candles", self.candles.apply, ack.submitted)
        finally:
            self._writer_done.set()

    def _guarded(self, what: str, step: Callable[..., object], *args: object) -> None:
        """Run a step of a loop; a bug in it is logged and counted, never ends the stream."""
        try:
            step(*args)
        except Exception:
            self.loop_errors += 1
            log.exception("Stream service step %r failed (%d failures so far); continuing.",
                          what, self.loop_errors)

    def _process(self, batch: list[Tick], malformed: list[QuarantineRecord]) -> Ack | None:
        """One durable write (worker thread); failures are logged and counted, not raised."""
        try:
            ack = self.pipeline.process(batch, malformed)
        except Exception as exc:  # the writer loop must go on: count, log, drop the batch
            self.write_failures += 1
            self.write_failed_ticks += len(batch)
            expected = isinstance(exc, WriterError | WalError | OSError)
            log.log(logging.ERROR, "Writing %d ticks failed (%r); they are lost. %d batches "
                    "failed so far.", len(batch), exc, self.write_failures,
                    exc_info=not expected)
            return None
        return ack

    def candle_clock_ms(self) -> int:
        """Wall clock held back to the oldest trade received but not yet written."""
        oldest = [us for us in (self.queue.oldest_trade_received_us(), self._inflight_oldest_us)
                  if us is not None]
        now = self._now_ms()
        return min(now, min(oldest) // 1000) if oldest else now

    async def _end_tasks(self, timeout_s: float) -> None:
        """Cancel the background loops and wait for them, giving up after ``timeout_s``.

        The loops also end by themselves once a stop is requested (:meth:`_pause`): a client
        library that swallows the cancellation (seen once in a Redis call) cannot keep one alive.
        """
        for task in self._tasks:
            task.cancel()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        if pending:
            stacks = io.StringIO()
            for task in pending:
                task.print_stack(file=stacks)
            log.warning("%d background task(s) did not end within %.0f s of the stop; going on "
                        "without them:\n%s", len(pending), timeout_s, stacks.getvalue())

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), seconds)

    async def _candle_loop(self) -> None:
        last_flush = 0.0
        candles = self.candles
        while candles is not None and not self._stop_requested.is_set():
            await self._pause(self.config.candle_check_s)
            before = candles.closed + candles.amended
            self._guarded("close candles", lambda: candles.close_due(self.candle_clock_ms()))
            if time.monotonic() - last_flush >= 1.0 or candles.closed + candles.amended > before:
                last_flush = time.monotonic()
                await self._flush_candles()

    async def _flush_candles(self) -> None:
        if self.candles is not None:
            try:
                await self.candles.flush()
            except Exception:  # Redis errors are handled inside; anything else is a bug
                self.loop_errors += 1
                log.exception("Flushing live candles failed; keeping them for the next flush.")

    async def _watchdog_loop(self) -> None:
        while not self._stop_requested.is_set():
            await self._pause(_WATCHDOG_S)
            for feed in self.feeds:
                self._guarded(f"watchdog {feed.name}", feed.check_stall)

    async def _health_loop(self) -> None:
        while not self._stop_requested.is_set():
            self._update_rate()
            try:
                await self.publisher.publish(self.health())
            except Exception:  # Redis errors are handled inside; anything else is a bug
                self.loop_errors += 1
                log.exception("Publishing health failed; trying again next interval.")
            await self._pause(self.config.health_interval_s)

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, object]:
        """The current health snapshot (also what is published to Redis)."""
        now = self._now_ms()
        stats, queue = self.stats, self.queue
        pipeline = self.pipeline.health()
        last_ts = stats.last_exchange_ts_ms
        return {
            "exchange": self.config.exchange, "status": self.status, "updated_at_ms": now,
            "started_at_ms": self.started_at_ms,
            "lag_ms": None if last_ts is None else now - last_ts,
            "messages": stats.messages, "ticks": stats.ticks, "ticks_per_s": self._ticks_per_s,
            "valid": pipeline["valid"],
            "quarantined": int(str(pipeline["quarantined"])) + self._malformed_unfiled(),
            "rejected": pipeline["rejected"], "malformed": stats.malformed,
            "soft_flagged": pipeline["soft_flagged"],
            "shed": queue.shed_total, "shed_trades": queue.shed_trades,
            "shed_quotes": queue.shed_quotes, "queue_depth": len(queue),
            "queue_high_water": queue.high_water, "in_flight": self._inflight,
            "write_failures": self.write_failures, "write_failed_ticks": self.write_failed_ticks,
            "reconnects": sum(f.status.reconnects for f in self.feeds),
            "stalls": sum(f.status.stalls for f in self.feeds),
            "last_message_at": stats.last_message_ms, "replayed": self.replayed,
            **self._candle_health(),
            "quarantine_errors": pipeline["quarantine_errors"], "loop_errors": self.loop_errors,
            "writer": pipeline["writer"], "feeds": self._feed_health(),
            "divergence": None if self.divergence is None else self.divergence.health(),
            "symbols": self._symbol_health(now),
        }

    def _candle_health(self) -> dict[str, object]:
        candles = self.candles
        if candles is None:
            return {"late_trades": 0, "candles_closed": 0, "candles_amended": 0,
                    "candles_pending": 0}
        return {"late_trades": candles.late_trades(), "candles_closed": candles.closed,
                "candles_amended": candles.amended, "candles_pending": candles.writer.pending}

    def _malformed_unfiled(self) -> int:
        """Malformed frames counted as quarantined before (or without) reaching the file."""
        return (self.stats.malformed_unattributed + len(self._malformed)
                + self._malformed_inflight + self._malformed_dropped)

    def _update_rate(self) -> None:
        """Ticks per second since the previous health interval."""
        mark_time, mark_ticks = self._rate_mark
        now = time.monotonic()
        self._rate_mark = (now, self.stats.ticks)
        elapsed = now - mark_time
        if elapsed > 0:
            self._ticks_per_s = round((self.stats.ticks - mark_ticks) / elapsed, 1)

    def _feed_health(self) -> dict[str, object]:
        return {f.name: {"kind": f.kind, "symbols": len(f.symbols), **vars(f.status)}
                for f in self.feeds}

    def _symbol_health(self, now: int) -> dict[str, object]:
        quarantined = self.pipeline.quarantined_by_symbol
        out: dict[str, object] = {}
        for symbol, stats in self.stats.symbols.items():
            ts = stats.last_exchange_ts_ms
            out[symbol] = {
                "last_seen_ms": stats.last_seen_ms, "lag_ms": None if ts is None else now - ts,
                "ticks": stats.ticks, "malformed": stats.malformed,
                "shed": dict(self.queue.shed.get(symbol, {})),
                "quarantined": quarantined.get(symbol, 0),
                "late_trades": 0 if self.candles is None else self.candles.late_trades(symbol),
            }
        return out

