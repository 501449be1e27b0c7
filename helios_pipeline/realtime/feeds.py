"""The ccxt.pro boundary of the stream service: subscriptions, parsed items -> ticks, reconnects.

One :class:`Feed` is one subscription of one tick kind for up to ``symbols_per_connection``
symbols (one websocket connection): ``watch_trades_for_symbols``, ``watch_bids_asks`` or
``watch_tickers`` (full 24 h tickers). Each feed owns its own ccxt.pro exchange object, a
subclass made by :func:`streaming_class` that adds four things to ccxt:

* **Capture at parse time.** ``parse_ws_trade`` / ``parse_ws_ticker`` hand every parsed item to
  the feed, which turns it into a :class:`~helios_pipeline.domain.ticks.Tick` stamped with
  ``received_ts_us = time.time_ns() // 1000`` and gives it to the sink. ccxt's ``watch_*``
  return values only carry the symbol whose message woke the caller, so reading them would
  delay the others; this way every item is seen once, as soon as it is parsed, and the watch
  loop only keeps the subscription alive.
* **A guard per connection.** ccxt.pro decodes and handles each frame inside the callback that
  also schedules the next socket read; one frame that is not JSON, or that its parser chokes on,
  raises there and silently ends that connection's reading. The guard catches it and reports
  the frame as malformed (with the symbol when the frame names one); so do items that
  ``realtime.convert`` cannot turn into exact ticks, and text frames ccxt silently ignores.
* **Connection-loss notice.** ``on_close`` / ``on_error`` tell the feed its connection is gone.
* ``number = Decimal``: ccxt parses prices and sizes as exact decimals.

Reconnects: on a ccxt ``NetworkError`` (or any other failure of the watch call) the feed waits
``uniform(0.5, 1) * min(cap, base * 2 ** (attempt - 1))`` (exponential backoff with jitter,
capped at ``backoff_cap_s``) and subscribes again; ccxt's own dial backoff (up to 30 s) is reset
first, so ours governs. :meth:`Feed.check_stall` is the watchdog: a feed that received nothing
for ``stall_timeout_s`` has its connection failed on purpose, which takes the same path.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Protocol, cast

import ccxt
import ccxt.pro as ccxtpro

from helios_pipeline.domain.ticks import Tick, TickError, TickKind
from helios_pipeline.exchanges.ccxt_adapter import optional_decimal, override_urls
from helios_pipeline.realtime.convert import to_tick

log = logging.getLogger(__name__)

RAW_LIMIT = 4096  # characters of a malformed frame kept in its quarantine record
_SYMBOL_IN_FRAME = re.compile(r'"s"\s*:\s*"([A-Za-z0-9]{2,30})"')


class FeedSink(Protocol):
    """Where feeds deliver: the stream service."""

    def on_tick(self, tick: Tick) -> None:
        """A converted tick (called from ccxt's socket callback: must not block)."""

    def on_malformed(self, feed: Feed, symbol: str | None, raw: object, reason: str) -> None:
        """A frame or item that could not become a tick."""

    def on_recovered(self, feed: Feed, down_since_ms: int, now_ms: int) -> None:
        """The feed delivers: for the first time, or again after losing its connection."""

    def on_lost(self, feed: Feed, now_ms: int) -> None:
        """The feed lost its connection."""


@dataclass
class FeedStatus:
    """What a feed reports in the service's health.

    Attributes:
        connected: Whether data flowed since the last (re)subscription.
        reconnects: Subscriptions made again after a loss.
        stalls: Losses forced by the watchdog.
        ticks: Ticks delivered.
        malformed: Frames or items reported malformed.
        last_message_ms: Wall time of the last data frame, ms.
        last_error: The last loss's error.
        down_since_ms: When the current outage began (``None``: up).
        last_recovery_ms: How long the last outage lasted, from loss to data again.
        recoveries_ms: The last outages' durations, oldest first.
    """

    connected: bool = False
    reconnects: int = 0
    stalls: int = 0
    ticks: int = 0
    malformed: int = 0
    last_message_ms: int | None = None
    last_error: str | None = None
    down_since_ms: int | None = None
    last_recovery_ms: int | None = None
    recoveries_ms: list[int] = field(default_factory=list)


class _StreamingHooks:
    """Mixed in before a ccxt.pro exchange class by :func:`streaming_class`."""

    helios_feed: Feed | None = None

    def client(self, url: str) -> Any:
        conn = cast(Any, super()).client(url)
        feed = self.helios_feed
        if feed is not None and not getattr(conn, "helios_guarded", False):
            _guard(conn, feed)
        return conn

    def parse_ws_trade(self, *args: Any, **kwargs: Any) -> Any:
        parsed = cast(Any, super()).parse_ws_trade(*args, **kwargs)
        if self.helios_feed is not None:
            self.helios_feed.capture(parsed)
        return parsed

    def parse_ws_ticker(self, *args: Any, **kwargs: Any) -> Any:
        parsed = cast(Any, super()).parse_ws_ticker(*args, **kwargs)
        if self.helios_feed is not None:
            self.helios_feed.capture(parsed)
        return parsed

    def on_error(self, conn: Any, error: Any) -> Any:
        current = (cast(Any, self).clients or {}).get(conn.url) is conn
        result = cast(Any, super()).on_error(conn, error)
        if self.helios_feed is not None and current:
            self.helios_feed.connection_lost(error)
        return result

    def on_close(self, conn: Any, error: Any) -> Any:
        current = (cast(Any, self).clients or {}).get(conn.url) is conn
        result = cast(Any, super()).on_close(conn, error)
        if self.helios_feed is not None and current:
            self.helios_feed.connection_lost(ccxt.NetworkError(f"connection closed ({error})"))
        return result


@cache
def streaming_class(exchange_id: str) -> Any:
    """A subclass of ``ccxt.pro.<exchange_id>`` that feeds a :class:`Feed` (module docstring).

    Raises:
        ValueError: ccxt.pro has no such exchange, or it lacks the parse hooks used here.
    """
    base: Any = getattr(ccxtpro, exchange_id, None)
    if exchange_id not in ccxtpro.exchanges or not isinstance(base, type):
        raise ValueError(f"ccxt.pro has no exchange {exchange_id!r} (HELIOS_EXCHANGE); use a "
                         "lower-case id from ccxt.pro.exchanges such as 'binance'.")
    missing = [m for m in ("parse_ws_trade", "parse_ws_ticker") if not hasattr(base, m)]
    if missing:
        raise ValueError(f"ccxt.pro.{exchange_id} has no {', '.join(missing)}: the stream service "
                         "captures ticks there; use an exchange whose ccxt.pro class has them.")
    return type(f"HeliosStreaming{base.__name__}", (_StreamingHooks, base), {})


def _guard(conn: Any, feed: Feed) -> None:
    """Report frames that ccxt cannot decode or handle instead of letting them end the reads."""
    original = conn.handle_text_or_binary_message

    def guarded(data: Any) -> None:
        feed.frame_started()
        try:
            original(data)
        except Exception as exc:  # reported as malformed, never swallowed
            feed.frame_failed(data, f"{type(exc).__name__}: {exc}")
        else:
            feed.frame_done(data)

    conn.handle_text_or_binary_message = guarded
    conn.helios_guarded = True


def make_exchange(exchange_id: str, base_url: str | None,
                  market_types: Sequence[str] = ("spot",), ws_url: str | None = None) -> Any:
    """A streaming ccxt.pro exchange (exact decimals, URLs moved to ``base_url`` if given).

    ``ws_url``, when given, replaces the spot websocket URL afterwards.

    Raises:
        ValueError: Unknown or unsupported exchange id.
    """
    exchange = streaming_class(exchange_id)({
        "enableRateLimit": True,
        "options": {"fetchMarkets": {"types": list(market_types)}, "defaultType": "spot"},
    })
    exchange.number = Decimal
    if base_url:
        override_urls(exchange.urls, base_url)
    if ws_url:
        exchange.urls["api"]["ws"]["spot"] = ws_url
    return exchange


async def top_symbols(exchange: Any, count: int, quote: str = "USDT") -> list[str]:
    """The ``count`` active spot symbols quoted in ``quote`` with the most 24 h quote volume.

    Raises:
        ccxt.BaseError: The exchange could not be asked (network, refusal).
    """
    await exchange.load_markets()
    tickers = await exchange.fetch_tickers()
    ranked: list[tuple[Decimal, str]] = []
    for symbol, ticker in tickers.items():
        market = exchange.markets.get(symbol) or {}
        if market.get("spot") and market.get("active") is not False and \
                market.get("quote") == quote:
            ranked.append((optional_decimal(ticker.get("quoteVolume")) or Decimal(0), symbol))
    ranked.sort(key=lambda pair: (-pair[0], pair[1]))
    return [symbol for _, symbol in ranked[:count]]


# --------------------------------------------------------------------------- the feed


class Feed:
    """One subscription (connection) of one kind for some symbols (see the module docstring).

    Args:
        name: Names the feed in logs and health (``trade#0``).
        kind: Tick kind it delivers.
        symbols: Unified symbols it subscribes.
        exchange: A :func:`make_exchange` object used by this feed only.
        sink: Receives ticks and reports.
        backoff: ``(base_s, cap_s)`` of the reconnect backoff.
        stall_timeout_s: Watchdog limit (``None``: no watchdog).
        clock_ns: Wall clock stamping receipts (``time.time_ns``; tests may warp it).
    """

    def __init__(self, name: str, kind: TickKind, symbols: Sequence[str], exchange: Any,
                 sink: FeedSink, backoff: tuple[float, float] = (0.1, 5.0),
                 stall_timeout_s: float | None = 10.0,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.name, self.kind = name, kind
        self.symbols = tuple(symbols)
        self._symbol_set = frozenset(self.symbols)
        self.exchange = exchange
        self.exchange_id: str = exchange.id
        exchange.helios_feed = self
        self._sink = sink
        self._backoff = backoff
        self._stall_timeout_s = stall_timeout_s
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self._clock_ns = clock_ns
        self.status = FeedStatus(down_since_ms=self._now_ms())
        self._first_connect = True
        self._stopping = False
        self._lost: asyncio.Future[BaseException] | None = None
        self._watching_since = time.monotonic()
        self._last_frame = time.monotonic()
        self._problem: tuple[str | None, str] | None = None
        self._frame_ticks = 0

    def _now_ms(self) -> int:
        return self._clock_ns() // 1_000_000

    # ------------------------------------------------------------------ called by ccxt

    def capture(self, item: Any) -> None:
        """Turn one parsed item into a tick for the sink (from ccxt's parse hooks)."""
        received_us = self._clock_ns() // 1000
        try:
            tick = to_tick(self.exchange_id, self.kind, item, received_us)
            if tick.symbol not in self._symbol_set:
                raise ValueError(f"symbol {tick.symbol!r} is not one this feed subscribed")
        except (ValueError, TypeError, ArithmeticError, TickError) as exc:
            symbol = item.get("symbol") if isinstance(item, dict) else None
            self._problem = (symbol if symbol in self._symbol_set else None, str(exc))
            return
        status = self.status
        status.ticks += 1
        self._frame_ticks += 1
        if not status.connected:
            self._mark_connected(received_us // 1000)
        self._sink.on_tick(tick)

    def frame_started(self) -> None:
        """A data frame arrived (the guard calls this before ccxt handles it)."""
        self._problem = None
        self._frame_ticks = 0
        self._last_frame = time.monotonic()
        self.status.last_message_ms = self._now_ms()

    def frame_done(self, data: Any) -> None:
        """The frame was handled by ccxt; report it if an item of it could not become a tick."""
        if self._problem is not None:
            symbol, reason = self._problem
            self._report(data, symbol, reason)
        elif not self._frame_ticks and not _json_object(data):
            # ccxt ignores text that is not a JSON object or array without a word: we do not.
            self._report(data, None, "not a JSON object")

    def frame_failed(self, data: Any, reason: str) -> None:
        """The frame made ccxt raise while decoding or handling it."""
        symbol = self._problem[0] if self._problem is not None else None
        if self._problem is not None:
            reason = f"{self._problem[1]}; then {reason}"
        self._report(data, symbol, reason)

    def _report(self, data: Any, symbol: str | None, reason: str) -> None:
        self._problem = None
        self.status.malformed += 1
        self._sink.on_malformed(self, symbol or self._symbol_in(data), _clip(data), reason)

    def _symbol_in(self, data: Any) -> str | None:
        """The subscribed symbol a (possibly truncated) frame names in its ``"s"`` field."""
        text = data if isinstance(data, str) else ""
        match = _SYMBOL_IN_FRAME.search(text)
        if match is None:
            return None
        markets = (self.exchange.markets_by_id or {}).get(match.group(1)) or []
        for market in markets if isinstance(markets, list) else [markets]:
            if isinstance(market, dict) and market.get("symbol") in self._symbol_set:
                return str(market["symbol"])
        return None

    def connection_lost(self, error: BaseException) -> None:
        """This feed's connection closed or failed (called from ccxt)."""
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(error)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Subscribe, wait for a loss, back off, subscribe again, until :meth:`stop`."""
        attempt = 0
        while not self._stopping:
            self._lost = asyncio.get_running_loop().create_future()
            self._watching_since = time.monotonic()
            try:
                await self._subscribe()
                attempt = 0
                error = await self._lost
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._stopping or (task is not None and task.cancelling()):
                    raise
                error = ccxt.NetworkError("ccxt cancelled the subscription")
            except Exception as exc:  # every failure means: resubscribe
                error = exc
            if self._stopping:
                return
            attempt += 1
            await self._after_loss(error, attempt)

    async def _subscribe(self) -> None:
        symbols = list(self.symbols)
        if self.kind == "trade":
            await self.exchange.watch_trades_for_symbols(symbols)
        elif self.kind == "book":
            await self.exchange.watch_bids_asks(symbols)
        else:
            await self.exchange.watch_tickers(symbols, params={"name": "ticker"})

    async def _after_loss(self, error: BaseException, attempt: int) -> None:
        now = self._now_ms()
        status = self.status
        status.connected = False
        status.last_error = f"{type(error).__name__}: {error}"
        if status.down_since_ms is None:
            status.down_since_ms = now
            self._sink.on_lost(self, now)
        base, cap = self._backoff
        delay = self._rng.uniform(0.5, 1.0) * min(cap, base * 2 ** min(attempt - 1, 30))
        level = logging.WARNING if isinstance(error, ccxt.NetworkError) else logging.ERROR
        log.log(level, "Feed %s lost its subscription (%s); resubscribing in %.2f s "
                "(attempt %d).", self.name, status.last_error, delay, attempt)
        await asyncio.sleep(delay)
        self.exchange.ws_dial_backoff = {}  # ccxt's dial backoff grows to 30 s: ours governs
        status.reconnects += 1

    def _mark_connected(self, now_ms: int) -> None:
        status = self.status
        status.connected = True
        down = status.down_since_ms
        status.down_since_ms = None
        if self._first_connect:
            self._first_connect = False
        elif down is not None:
            status.last_recovery_ms = now_ms - down
            status.recoveries_ms = [*status.recoveries_ms[-19:], now_ms - down]
            log.warning("Feed %s delivers again after %d ms.", self.name, now_ms - down)
        self._sink.on_recovered(self, now_ms if down is None else down, now_ms)

    def check_stall(self, now_s: float | None = None) -> bool:
        """Watchdog: fail the connection if nothing arrived for ``stall_timeout_s``.

        Returns:
            Whether a reconnect was forced.
        """
        limit = self._stall_timeout_s
        if limit is None or self._stopping:
            return False
        now = time.monotonic() if now_s is None else now_s
        quiet_since = max(self._last_frame, self._watching_since)
        clients = list((self.exchange.clients or {}).values())
        if now - quiet_since < limit or not clients:
            return False
        self.status.stalls += 1
        self._watching_since = now
        log.warning("Feed %s received nothing for %.1f s; forcing a reconnect.", self.name,
                    now - quiet_since)
        for conn in clients:
            conn.on_error(ccxt.NetworkError(f"no message for {limit:g} s (stalled)"))
        return True

    async def stop(self) -> None:
        """Stop resubscribing and close the connection."""
        self._stopping = True
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(ccxt.NetworkError("stopping"))
        try:
            await self.exchange.close()
        except Exception:  # a failing close must not prevent the others
            log.exception("Closing feed %s failed.", self.name)


def _json_object(data: Any) -> bool:
    """Whether ccxt decodes ``data`` as JSON (its rule: text of 2+ chars opening with { or [)."""
    if isinstance(data, bytes):
        return data[:1] in (b"{", b"[") and len(data) >= 2
    return isinstance(data, str) and len(data) >= 2 and data[0] in "{["


def _clip(data: Any) -> object:
    """A malformed frame as kept for quarantine: text (or bytes), cut at RAW_LIMIT."""
    if isinstance(data, bytes | str) and len(data) > RAW_LIMIT:
        return f"{data[:RAW_LIMIT]!r}... ({len(data)} in all)"
    return data
