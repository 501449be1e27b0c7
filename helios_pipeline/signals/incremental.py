"""Incremental indicators: one object per indicator, fed one closed candle at a time.

Each ``update`` costs O(1) (a fixed amount of work per candle, whatever the history) and returns
the indicator's value for that candle, NaN during the warm-up. Fed the same series as the batch
functions in :mod:`helios_pipeline.signals.indicators`, the values agree to 1e-9 relative: the
same recursions in the same order, in plain floats.

Each class has ``update(candle)``, which checks the candle (finite prices, time order), and
``step(...)``, which takes already checked floats: ``frame.IndicatorSet`` checks a candle once
and steps every indicator with plain Python floats (no numpy scalars, no per-update allocation
beyond the result), which keeps an update of all of them in microseconds.

Candles are anything with ``high``, ``low`` and ``close`` (``Decimal`` or float, e.g.
:class:`~helios_pipeline.domain.models.OHLCVData`); close-only indicators also take a bare number.
A candle with a ``timestamp`` must be later than the previous one.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from helios_pipeline.signals.inputs import check_period

# The same threshold as smoothing.EXACT_BELOW (the batch rolling moments).
EXACT_BELOW = 1e-3

NAN = math.nan


class CandleLike(Protocol):
    """What the incremental indicators read from a candle."""

    @property
    def high(self) -> Decimal | float: ...  # noqa: D102

    @property
    def low(self) -> Decimal | float: ...  # noqa: D102

    @property
    def close(self) -> Decimal | float: ...  # noqa: D102


class _Feed:
    """Reads numbers from candles, refusing NaN prices and candles out of time order."""

    __slots__ = ("_last_time", "rows")

    def __init__(self) -> None:
        self.rows = 0
        self._last_time: datetime | None = None

    def price(self, candle: CandleLike | float, field: str = "close") -> float:
        if isinstance(candle, int | float | Decimal):
            if field != "close":
                raise ValueError(f"candle: a bare number has no {field}; pass a candle.")
            value = float(candle)
        else:
            value = float(getattr(candle, field))
        if not math.isfinite(value):
            raise ValueError(f"candle.{field}={value!r} at row {self.rows}: a price must be a "
                             "finite number; repair the candle before feeding it.")
        return value

    def advance(self, candle: CandleLike | float) -> None:
        stamp = getattr(candle, "timestamp", None)
        if isinstance(stamp, datetime):
            if self._last_time is not None and stamp <= self._last_time:
                raise ValueError(f"candle.timestamp={stamp.isoformat()} is not after the previous "
                                 f"candle's {self._last_time.isoformat()}; feed closed candles "
                                 "once each, in time order.")
            self._last_time = stamp
        self.rows += 1


class FloatCandle(NamedTuple):
    """A checked candle as floats."""

    high: float
    low: float
    close: float


class FloatFeed(_Feed):
    """Checks a candle once (finite prices, time order) and hands on its floats."""

    __slots__ = ()

    def read(self, candle: CandleLike) -> FloatCandle:
        """The candle's high, low and close as floats, checked."""
        try:
            floats = FloatCandle(float(candle.high), float(candle.low), float(candle.close))
        except (AttributeError, TypeError, ValueError):
            floats = self._read_slowly(candle)
        if not math.isfinite(floats.high + floats.low + floats.close):
            floats = self._read_slowly(candle)
        self.advance(candle)
        return floats

    def _read_slowly(self, candle: CandleLike) -> FloatCandle:
        """Field by field, so that a bad one is named (the sum of huge finite prices may be inf)."""
        return FloatCandle(self.price(candle, "high"), self.price(candle, "low"),
                           self.price(candle, "close"))


class _WindowSum:
    """Sum and sum of squares of the last ``period`` values, re-anchored every ``period`` rows.

    Values are kept as deviations from an anchor (the newest value at the last re-anchoring), and
    the sums are recomputed from scratch every ``period`` updates: amortised O(1), no drift. The
    same schedule and anchor as the batch form (``smoothing.rolling_mean_var``).
    """

    __slots__ = ("_since", "anchor", "peak", "period", "squares", "total", "values")

    def __init__(self, period: int) -> None:
        self.period = period
        self.values: deque[float] = deque(maxlen=period)
        self.anchor = 0.0
        self.total = 0.0
        self.squares = 0.0
        self.peak = 0.0  # the largest ``squares`` since the last re-anchoring
        self._since = 0

    def push(self, value: float) -> None:
        if len(self.values) == self.period:
            old = self.values[0] - self.anchor
            self.total -= old
            self.squares -= old * old
        self.values.append(value)
        self._since += 1
        if self._since >= self.period:
            self._reanchor()
            return
        new = value - self.anchor
        self.total += new
        self.squares += new * new
        self.peak = max(self.peak, self.squares)

    def _reanchor(self) -> None:
        self._since = 0
        anchor = self.anchor = self.values[-1]
        total = squares = 0.0
        for value in self.values:
            deviation = value - anchor
            total += deviation
            squares += deviation * deviation
        self.total, self.squares, self.peak = total, squares, squares

    def mean_var(self) -> tuple[float, float]:
        """Mean and population variance of the window, exact two-pass when nearly flat.

        As in the batch form (``smoothing.EXACT_BELOW``): a variance too small to be told apart
        from the running sums' rounding (relative to the largest they held since the last
        re-anchoring) is recomputed from the values; a flat window gives 0.
        """
        count = len(self.values)
        shift = self.total / count
        variance = self.squares / count - shift * shift
        if variance > EXACT_BELOW * self.peak / count:
            return self.anchor + shift, variance
        lowest, highest = min(self.values), max(self.values)
        if lowest == highest:
            return lowest, 0.0
        centre = sum(self.values) / count
        return centre, sum((value - centre) ** 2 for value in self.values) / count


class _Ema:
    """EMA state: seeded from outside, then ``k * x + (1 - k) * prev``."""

    __slots__ = ("decay", "k", "value")

    def __init__(self, period: int) -> None:
        self.k = 2.0 / (period + 1)
        self.decay = 1.0 - self.k
        self.value = NAN

    def step(self, x: float) -> float:
        self.value = self.k * x + self.decay * self.value
        return self.value


class _Wilder:
    """Wilder mean: the mean of the first ``period`` values, then ``(prev*(n-1) + x) / n``."""

    __slots__ = ("count", "decay", "period", "total", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self.decay = (period - 1) / period
        self.count = 0
        self.total = 0.0
        self.value = NAN

    def step(self, x: float) -> float:
        self.count += 1
        if self.count > self.period:
            self.value = x / self.period + self.decay * self.value
        elif self.count < self.period:
            self.total += x
        else:
            self.value = (self.total + x) / self.period
        return self.value


class SMA:
    """Simple moving average of the last ``period`` closes."""

    __slots__ = ("_feed", "_window", "period")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period(period, "period")
        self._feed = _Feed()
        self._window = _WindowSum(self.period)

    def update(self, candle: CandleLike | float) -> float:
        """Take one closed candle (or close) and return the SMA at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        return self.step(value)

    def step(self, close: float) -> float:
        """Take one checked close and return the SMA at it."""
        window = self._window
        window.push(close)
        return window.mean_var()[0] if len(window.values) == self.period else NAN


class EMA:
    """Exponential moving average, seeded with the SMA of the first ``period`` closes."""

    __slots__ = ("_ema", "_feed", "_rows", "_seed", "period")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period(period, "period")
        self._feed = _Feed()
        self._ema = _Ema(self.period)
        self._seed = 0.0
        self._rows = 0

    def update(self, candle: CandleLike | float) -> float:
        """Take one closed candle (or close) and return the EMA at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        return self.step(value)

    def step(self, close: float) -> float:
        """Take one checked close and return the EMA at it."""
        self._rows += 1
        if self._rows > self.period:
            return self._ema.step(close)
        if self._rows < self.period:
            self._seed += close
            return NAN
        self._ema.value = (self._seed + close) / self.period
        return self._ema.value


class RSI:
    """Relative strength index (Wilder), 0..100; 0 while the price has not moved."""

    __slots__ = ("_feed", "_gains", "_losses", "_previous", "period")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period(period, "period")
        self._feed = _Feed()
        self._gains = _Wilder(self.period)
        self._losses = _Wilder(self.period)
        self._previous = NAN

    def update(self, candle: CandleLike | float) -> float:
        """Take one closed candle (or close) and return the RSI at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        return self.step(value)

    def step(self, close: float) -> float:
        """Take one checked close and return the RSI at it."""
        previous, self._previous = self._previous, close
        if previous != previous:  # NaN: the first close has no change
            return NAN
        change = close - previous
        gain = self._gains.step(change if change > 0.0 else 0.0)
        loss = self._losses.step(-change if change < 0.0 else 0.0)
        if gain != gain:
            return NAN
        total = gain + loss
        return 100.0 * (gain / total) if total > 0.0 else 0.0


class MACDValue(NamedTuple):
    """One candle's MACD line, signal line and histogram."""

    macd: float
    signal: float
    histogram: float


MACD_WARMING = MACDValue(NAN, NAN, NAN)


class MACD:
    """MACD line, signal and histogram, started as TA-Lib starts them (see ``indicators``)."""

    __slots__ = ("_closes", "_fast", "_feed", "_signal", "_slow", "fast", "signal", "slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast, self.slow = check_period(fast, "fast"), check_period(slow, "slow")
        self.signal = check_period(signal, "signal")
        if self.fast >= self.slow:
            raise ValueError(f"fast={fast}, slow={slow}: the fast EMA must be shorter than the "
                             "slow.")
        self._feed = _Feed()
        self._closes: deque[float] | None = deque(maxlen=self.slow)
        self._fast, self._slow = _Ema(self.fast), _Ema(self.slow)
        self._signal = EMA(self.signal)

    def update(self, candle: CandleLike | float) -> MACDValue:
        """Take one closed candle (or close) and return the MACD values at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        return self.step(value)

    def step(self, close: float) -> MACDValue:
        """Take one checked close and return the MACD values at it."""
        if self._closes is None:
            line = self._fast.step(close) - self._slow.step(close)
        else:
            self._closes.append(close)
            if len(self._closes) < self.slow:
                return MACD_WARMING
            line = self._seed(list(self._closes))
        signal = self._signal.step(line)
        if signal != signal:
            return MACD_WARMING
        return MACDValue(line, signal, line - signal)

    def _seed(self, closes: list[float]) -> float:
        """Start both EMAs at the ``slow``-th close; the closes are no longer kept."""
        self._closes = None
        self._slow.value = sum(closes) / self.slow
        self._fast.value = sum(closes[-self.fast:]) / self.fast
        return self._fast.value - self._slow.value


class BollingerValue(NamedTuple):
    """One candle's Bollinger bands."""

    upper: float
    middle: float
    lower: float


class Bollinger:
    """Bollinger bands: SMA +- ``k`` population standard deviations."""

    __slots__ = ("_feed", "_window", "k", "period")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.period = check_period(period, "period")
        if not (math.isfinite(k) and k >= 0):
            raise ValueError(f"k={k!r}: must be a finite, non-negative number of deviations.")
        self.k = k
        self._feed = _Feed()
        self._window = _WindowSum(self.period)

    def update(self, candle: CandleLike | float) -> BollingerValue:
        """Take one closed candle (or close) and return the bands at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        return self.step(value)

    def step(self, close: float) -> BollingerValue:
        """Take one checked close and return the bands at it."""
        window = self._window
        window.push(close)
        if len(window.values) < self.period:
            return BollingerValue(NAN, NAN, NAN)
        mean, var = window.mean_var()
        width = self.k * math.sqrt(var)
        return BollingerValue(mean + width, mean, mean - width)


class RangeFeed:
    """True range of each candle after the first (TA-Lib's definition)."""

    __slots__ = ("feed", "previous_close", "previous_high", "previous_low")

    def __init__(self) -> None:
        self.feed = FloatFeed()
        self.previous_close = NAN
        self.previous_high = NAN
        self.previous_low = NAN

    def read(self, candle: CandleLike) -> FloatCandle:
        """``(high, low, close)`` of the candle, checked."""
        return self.feed.read(candle)

    def true_range(self, high: float, low: float) -> float:
        """True range against the previous close."""
        previous = self.previous_close
        return (high if high > previous else previous) - (low if low < previous else previous)

    def remember(self, high: float, low: float, close: float) -> None:
        """Keep this candle as the previous one."""
        self.previous_high, self.previous_low, self.previous_close = high, low, close


class ATR:
    """Average true range (Wilder)."""

    __slots__ = ("_mean", "_ranges", "period")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period(period, "period")
        self._ranges = RangeFeed()
        self._mean = _Wilder(self.period)

    def update(self, candle: CandleLike) -> float:
        """Take one closed candle and return the ATR at it."""
        return self.step(*self._ranges.read(candle))

    def step(self, high: float, low: float, close: float) -> float:
        """Take one checked candle's high, low and close and return the ATR at it."""
        ranges = self._ranges
        value = NAN
        if ranges.previous_close == ranges.previous_close:  # not the first candle
            value = self._mean.step(ranges.true_range(high, low))
        ranges.remember(high, low, close)
        return value
