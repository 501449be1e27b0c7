"""Live 1m candles built from streamed trades: closed on the minute boundary, amended when late.

:class:`LiveCandleBuilder` keeps one symbol's open minute and the recently closed ones:

* A trade belongs to the minute of its **exchange** time (``ts_ms``); open, high, low, close,
  volume (exact ``Decimal`` sums, no rounding: an inexact sum raises) and the trade count are
  kept per minute. Open is the earliest trade, close the latest (ties: the later arrival).
* A minute **closes** when the clock passes its end (:meth:`LiveCandleBuilder.close_due`, which
  the service calls several times a second) or when a trade of a later minute arrives, whichever
  comes first; the closed candle is emitted then (``version=1``, ``amended=False``). A minute
  without trades yields no candle: gaps are never filled.
* A trade of an already closed minute that **arrives** (``received_ms``) at most
  ``late_tolerance_ms`` after that minute's end amends it: the candle is emitted again with
  ``amended=True`` and the next ``version``. A later one is not applied; it is counted in
  :attr:`LiveCandleBuilder.late_trades` and kept in :attr:`LiveCandleBuilder.recent_late`, so the
  caller can report it (the REST ``ohlcv_1m`` backfill is the authority for that minute).
* A candle is ``complete=False`` when trades of its minute may be missing: the minute overlaps
  the time before the builder started (``started_ms``), an outage of the trade feed
  (:meth:`LiveCandleBuilder.outage_began` / :meth:`~LiveCandleBuilder.outage_ended`) or a trade
  known to be lost (:meth:`LiveCandleBuilder.mark_missing`, e.g. shed under backpressure).
  Reconciliation with REST candles should expect differences only there.

The builder is pure (no clock, no I/O): every time comes in as an argument.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import MINUTE_MS

# Sums must be exact: a context so wide no realistic volume rounds, trapping if one ever would.
_EXACT = Context(prec=120, traps=[Inexact, Rounded, InvalidOperation])
RECENT_LATE = 100


@dataclass(frozen=True, slots=True)
class LateTrade:
    """A trade that arrived after its minute's amendment window; not applied.

    Attributes:
        symbol: ccxt unified symbol.
        ts_ms: Exchange time of the trade.
        price: Its price.
        qty: Its quantity.
        received_ms: When it arrived.
        late_by_ms: How long after its minute's end it arrived.
    """

    symbol: str
    ts_ms: int
    price: Decimal
    qty: Decimal
    received_ms: int
    late_by_ms: int


class _Minute:
    """The running aggregate of one minute."""

    __slots__ = ("close", "count", "first_ms", "high", "last_ms", "low", "open", "open_ms",
                 "version", "volume")

    def __init__(self, open_ms: int, ts_ms: int, price: Decimal, qty: Decimal) -> None:
        self.open_ms = open_ms
        self.open = self.high = self.low = self.close = price
        self.volume = _EXACT.plus(qty)
        self.count = 1
        self.first_ms = self.last_ms = ts_ms
        self.version = 0

    def add(self, ts_ms: int, price: Decimal, qty: Decimal) -> None:
        if ts_ms < self.first_ms:
            self.first_ms, self.open = ts_ms, price
        if ts_ms >= self.last_ms:
            self.last_ms, self.close = ts_ms, price
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.volume = _EXACT.add(self.volume, qty)
        self.count += 1

    def emit(self, symbol: str, now_ms: int, amended: bool, complete: bool) -> LiveCandle:
        self.version += 1
        return LiveCandle(symbol, self.open_ms, self.open, self.high, self.low, self.close,
                          self.volume, self.count, self.first_ms, self.last_ms, self.version,
                          amended, now_ms, complete)


class LiveCandleBuilder:
    """Trades of one symbol -> 1m candles (see the module docstring for the rules).

    Args:
        symbol: ccxt unified symbol.
        late_tolerance_ms: How long after a minute's end a trade of it may arrive and still
            amend it.
        started_ms: When trades started to come in; the minute holding it is incomplete.
            ``None``: every minute may be complete.
    """

    def __init__(self, symbol: str, late_tolerance_ms: int = 2000,
                 started_ms: int | None = None) -> None:
        if late_tolerance_ms < 0:
            raise ValueError(f"late_tolerance_ms={late_tolerance_ms}: must be 0 or more.")
        self.symbol = symbol
        self.late_tolerance_ms = late_tolerance_ms
        self.late_trades = 0
        self.amendments = 0
        self.recent_late: deque[LateTrade] = deque(maxlen=RECENT_LATE)
        self._open: _Minute | None = None
        self._closed: dict[int, _Minute] = {}  # closed minutes that can still be amended
        self._closed_before = -1  # every minute opening before this is closed
        # Times in which trades may be missing: [start, end) intervals, and an ongoing outage.
        self._gaps: list[tuple[int, int]] = [] if started_ms is None else [(0, started_ms + 1)]
        self._outage: int | None = None

    def outage_began(self, at_ms: int) -> None:
        """Trades may be missing from ``at_ms`` on (the trade feed lost its connection)."""
        if self._outage is None:
            self._outage = at_ms

    def outage_ended(self, at_ms: int) -> None:
        """Trades flow again from ``at_ms`` on."""
        if self._outage is not None:
            self._gaps.append((self._outage, at_ms + 1))
            self._outage = None

    def mark_missing(self, ts_ms: int) -> None:
        """A trade at exchange time ``ts_ms`` is known to be lost (e.g. shed)."""
        self._gaps.append((ts_ms, ts_ms + 1))

    def _complete(self, open_ms: int) -> bool:
        end = open_ms + MINUTE_MS
        if self._outage is not None and self._outage < end:
            return False
        return not any(start < end and open_ms < stop for start, stop in self._gaps)

    @property
    def open_minute_ms(self) -> int | None:
        """Open time of the minute being built, if any."""
        return None if self._open is None else self._open.open_ms

    def add(self, ts_ms: int, price: Decimal, qty: Decimal, received_ms: int) -> list[LiveCandle]:
        """Apply one trade; returns the candles this emits (a close, or an amendment).

        Args:
            ts_ms: Exchange time of the trade (decides its minute).
            price: Trade price.
            qty: Trade quantity (base).
            received_ms: When it arrived (decides whether a late trade may still amend).
        """
        minute = ts_ms - ts_ms % MINUTE_MS
        if minute < self._closed_before:
            return self._late(minute, ts_ms, price, qty, received_ms)
        current = self._open
        if current is not None and minute == current.open_ms:
            current.add(ts_ms, price, qty)
            return []
        emitted = [] if current is None else [self._close(current, received_ms)]
        self._open = _Minute(minute, ts_ms, price, qty)
        self._closed_before = minute  # the exchange's time has moved on: earlier minutes are over
        return emitted

    def close_due(self, now_ms: int) -> list[LiveCandle]:
        """Close the open minute if the clock has passed its end; forget unamendable minutes.

        Args:
            now_ms: The clock: a minute ending at or before it is over.
        """
        emitted: list[LiveCandle] = []
        current = self._open
        if current is not None and now_ms >= current.open_ms + MINUTE_MS:
            emitted.append(self._close(current, now_ms))
        self._closed_before = max(self._closed_before, now_ms - now_ms % MINUTE_MS)
        horizon = now_ms - self.late_tolerance_ms - MINUTE_MS
        for open_ms in [m for m in self._closed if m < horizon]:
            del self._closed[open_ms]
        if self._gaps:
            self._gaps = [g for g in self._gaps if g[1] >= horizon]
        return emitted

    def _close(self, current: _Minute, now_ms: int) -> LiveCandle:
        self._open = None
        self._closed[current.open_ms] = current
        self._closed_before = max(self._closed_before, current.open_ms + MINUTE_MS)
        return current.emit(self.symbol, now_ms, False, self._complete(current.open_ms))

    def _late(self, minute: int, ts_ms: int, price: Decimal, qty: Decimal,
              received_ms: int) -> list[LiveCandle]:
        late_by = received_ms - (minute + MINUTE_MS)
        if late_by > self.late_tolerance_ms:
            self.late_trades += 1
            self.recent_late.append(LateTrade(self.symbol, ts_ms, price, qty, received_ms,
                                              late_by))
            return []
        closed = self._closed.get(minute)
        if closed is None:  # the minute closed empty: this trade is its first
            closed = self._closed[minute] = _Minute(minute, ts_ms, price, qty)
        else:
            closed.add(ts_ms, price, qty)
        self.amendments += 1
        return [closed.emit(self.symbol, received_ms, True, self._complete(minute))]
