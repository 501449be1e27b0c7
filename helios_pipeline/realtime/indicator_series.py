"""Incremental indicators of one symbol's live candles, per timeframe (pure: no clock, no I/O).

:class:`SymbolIndicators` takes the live 1m candles of a symbol as the stream service emits them
and feeds each timeframe's :class:`~helios_pipeline.signals.frame.IndicatorSet` once per closed
candle:

* A 1m candle is used once it is **final**: when the clock is past its end plus the late-trade
  tolerance, so no amendment can change it any more (``realtime.candles``). Until then it waits,
  and an amended version replaces it. The values therefore follow the candle close by that
  tolerance (2 s by default) and are computed over exactly the candles Redis keeps.
* A longer candle (5m, 1h, ...) is the aggregate of its final 1m candles (high = highest, low =
  lowest, close = the last minute's close; what ``domain.aggregate`` does). It closes when a
  minute of a later bucket becomes final, or when the clock is past its end plus the tolerance.
* A minute without trades has no candle, and a bucket without any has none either: a gap in
  the candles is a gap in the indicator input, as in the batch functions.

Warm start (:meth:`LiveSeries.warm`) feeds the stored candles first, so the next live value is
the batch value over the stored candles plus the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import MINUTE_MS
from helios_pipeline.signals.frame import DEFAULT_PARAMS, IndicatorParams, IndicatorSet


class Bar(NamedTuple):
    """What the indicators read from a candle, with its open time."""

    open_ms: int
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True, slots=True)
class Update:
    """New indicator values of one closed candle."""

    timeframe: str
    open_ms: int
    close: Decimal
    indicators: dict[str, float]


class LiveSeries:
    """One timeframe's indicators and the bucket being filled (see the module docstring).

    Args:
        timeframe: Its name (``5m``).
        length_ms: Candle length; a whole number of minutes.
        params: Indicator periods.
    """

    def __init__(self, timeframe: str, length_ms: int,
                 params: IndicatorParams = DEFAULT_PARAMS) -> None:
        if length_ms <= 0 or length_ms % MINUTE_MS:
            raise ValueError(f"length_ms={length_ms} for {timeframe}: must be a positive "
                             "whole number of minutes.")
        self.timeframe = timeframe
        self.length_ms = length_ms
        self.indicators = IndicatorSet(params)
        self.bucket: Bar | None = None
        self.last_open_ms: int | None = None  # open time of the last candle fed
        self.last_minute_ms = -1  # open time of the last minute added
        self.fed = 0

    def warm(self, closed: Iterable[Bar], partial: Iterable[Bar]) -> Update | None:
        """Feed stored closed candles, then start the open bucket from its stored minutes.

        Returns:
            The values at the last closed candle, if there was one.
        """
        update = None
        for bar in closed:
            update = self._feed(bar)
        for minute in partial:
            self.add(minute)
        return update

    def add(self, minute: Bar) -> Update | None:
        """Add one final 1m candle; returns the values of the bucket it closes, if any."""
        if minute.open_ms <= self.last_minute_ms:
            return None  # added already (warm start overlapping the live candles)
        self.last_minute_ms = minute.open_ms
        start = minute.open_ms - minute.open_ms % self.length_ms
        current = self.bucket
        closed = None
        if current is not None and start > current.open_ms:
            closed = self._feed(current)
            current = None
        if current is None:
            self.bucket = Bar(start, minute.high, minute.low, minute.close)
        else:
            self.bucket = Bar(start, max(current.high, minute.high), min(current.low, minute.low),
                              minute.close)
        return closed

    def close_due(self, final_ms: int) -> Update | None:
        """Close the bucket if every minute before ``final_ms`` is final and it ended by then."""
        current = self.bucket
        if current is None or current.open_ms + self.length_ms > final_ms:
            return None
        return self._feed(current)

    @property
    def due_ms(self) -> int | None:
        """When the open bucket can close (before the tolerance), if one is open."""
        return None if self.bucket is None else self.bucket.open_ms + self.length_ms

    def _feed(self, bar: Bar) -> Update | None:
        self.bucket = None if self.bucket is bar else self.bucket
        if self.last_open_ms is not None and bar.open_ms <= self.last_open_ms:
            return None  # fed already (warm start overlapping the live candles)
        values = self.indicators.update(bar)
        self.last_open_ms = bar.open_ms
        self.fed += 1
        return Update(self.timeframe, bar.open_ms, bar.close, values)


class SymbolIndicators:
    """Every timeframe of one symbol, fed from its live 1m candles (see the module docstring).

    Args:
        series: One :class:`LiveSeries` per timeframe.
        late_tolerance_ms: How long after its end a minute can still be amended.
    """

    def __init__(self, series: Iterable[LiveSeries], late_tolerance_ms: int) -> None:
        self.series = list(series)
        self.late_tolerance_ms = late_tolerance_ms
        self.pending: dict[int, LiveCandle] = {}
        self.final_before_ms = -1  # every minute opening before this was used (or stored)
        self.skipped = 0

    def started(self, last_stored_ms: int | None) -> None:
        """The warm start used the minutes up to ``last_stored_ms``: later ones come live."""
        if last_stored_ms is not None:
            self.final_before_ms = max(self.final_before_ms, last_stored_ms + 1)

    def on_candle(self, candle: LiveCandle) -> None:
        """A closed or amended live candle: kept until it is final."""
        if candle.open_ms < self.final_before_ms:
            self.skipped += 1  # already final (or stored before the start): cannot change now
            return
        self.pending[candle.open_ms] = candle

    def finalize(self, clock_ms: int) -> list[Update]:
        """Use every minute final at ``clock_ms``; close the buckets that ended."""
        final_ms = clock_ms - self.late_tolerance_ms  # minutes ending before this are final
        updates: list[Update] = []
        for open_ms in sorted(m for m in self.pending if m + MINUTE_MS < final_ms):
            candle = self.pending.pop(open_ms)
            bar = Bar(open_ms, candle.high, candle.low, candle.close)
            updates += [u for s in self.series if (u := s.add(bar)) is not None]
        self.final_before_ms = max(self.final_before_ms, final_ms - MINUTE_MS)
        updates += [u for s in self.series if (u := s.close_due(final_ms - 1)) is not None]
        return updates

    def due_ms(self) -> int | None:
        """Earliest clock at which :meth:`finalize` has something to do."""
        ends = [m + MINUTE_MS for m in self.pending]
        ends += [d for s in self.series if (d := s.due_ms) is not None]
        return min(ends) + self.late_tolerance_ms + 1 if ends else None
