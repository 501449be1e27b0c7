"""Incremental indicators: one object per indicator, fed one closed candle at a time.

Each ``update`` costs O(1) (a fixed amount of work per candle, whatever the history) and returns
the indicator's value for that candle, NaN during the warm-up. Fed the same series as the batch
functions in :mod:`helios_pipeline.signals.indicators`, the values agree to 1e-9 relative: the
same recursions in the same order, in plain floats.

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

    def read(self, candle: CandleLike) -> FloatCandle:
        """The candle's high, low and close as floats, checked."""
        floats = FloatCandle(self.price(candle, "high"), self.price(candle, "low"),
                             self.price(candle, "close"))
        self.advance(candle)
        return floats


class _WindowSum:
    """Sum and sum of squares of the last ``period`` values, re-anchored every ``period`` rows.

    Values are kept as deviations from an anchor (the window mean at the last re-anchoring), and
    the sums are recomputed exactly every ``period`` updates: amortised O(1), no drift.
    """

    def __init__(self, period: int) -> None:
        self.period = period
        self.values: deque[float] = deque(maxlen=period)
        self.anchor = 0.0
        self.total = 0.0
        self.squares = 0.0
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

    def _reanchor(self) -> None:
        self._since = 0
        self.anchor = math.fsum(self.values) / len(self.values)
        deviations = [value - self.anchor for value in self.values]
        self.total = math.fsum(deviations)
        self.squares = math.fsum(d * d for d in deviations)

    def mean_var(self) -> tuple[float, float]:
        count = len(self.values)
        shift = self.total / count
        return self.anchor + shift, max(self.squares / count - shift * shift, 0.0)


class _Ema:
    """EMA state: seeded from outside, then ``k * x + (1 - k) * prev``."""

    def __init__(self, period: int) -> None:
        self.k = 2.0 / (period + 1)
        self.decay = 1.0 - self.k
        self.value = NAN

    def step(self, x: float) -> float:
        self.value = self.k * x + self.decay * self.value
        return self.value


class _Wilder:
    """Wilder mean: the mean of the first ``period`` values, then ``(prev*(n-1) + x) / n``."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.decay = (period - 1) / period
        self.count = 0
        self.total = 0.0
        self.value = NAN

    def step(self, x: float) -> float:
        self.count += 1
        if self.count < self.period:
            self.total += x
        elif self.count == self.period:
            self.value = (self.total + x) / self.period
        else:
            self.value = x / self.period + self.decay * self.value
        return self.value


class SMA:
    """Simple moving average of the last ``period`` closes."""

    def __init__(self, period: int = 20) -> None:
        self.period = check_period(period, "period")
        self._feed = _Feed()
        self._window = _WindowSum(self.period)

    def update(self, candle: CandleLike | float) -> float:
        """Take one closed candle (or close) and return the SMA at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        self._window.push(value)
        return self._window.mean_var()[0] if self._feed.rows >= self.period else NAN


class EMA:
    """Exponential moving average, seeded with the SMA of the first ``period`` closes."""

    def __init__(self, period: int = 20) -> None:
        self.period = check_period(period, "period")
        self._feed = _Feed()
        self._ema = _Ema(self.period)
        self._seed = 0.0

    def update(self, candle: CandleLike | float) -> float:
        """Take one closed candle (or close) and return the EMA at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        rows = self._feed.rows
        if rows < self.period:
            self._seed += value
            return NAN
        if rows == self.period:
            self._ema.value = (self._seed + value) / self.period
            return self._ema.value
        return self._ema.step(value)


class RSI:
    """Relative strength index (Wilder), 0..100; 0 while the price has not moved."""

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
        previous, self._previous = self._previous, value
        if self._feed.rows == 1:
            return NAN
        change = value - previous
        gain = self._gains.step(max(change, 0.0))
        loss = self._losses.step(max(-change, 0.0))
        if math.isnan(gain):
            return NAN
        total = gain + loss
        return 100.0 * (gain / total) if total > 0.0 else 0.0


class MACDValue(NamedTuple):
    """One candle's MACD line, signal line and histogram."""

    macd: float
    signal: float
    histogram: float


class MACD:
    """MACD line, signal and histogram, started as TA-Lib starts them (see ``indicators``)."""

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast, self.slow = check_period(fast, "fast"), check_period(slow, "slow")
        self.signal = check_period(signal, "signal")
        if self.fast >= self.slow:
            raise ValueError(f"fast={fast}, slow={slow}: the fast EMA must be shorter than the "
                             "slow.")
        self._feed = _Feed()
        self._closes: deque[float] = deque(maxlen=self.slow)
        self._fast, self._slow = _Ema(self.fast), _Ema(self.slow)
        self._signal = EMA(self.signal)

    def update(self, candle: CandleLike | float) -> MACDValue:
        """Take one closed candle (or close) and return the MACD values at it."""
        value = self._feed.price(candle)
        self._feed.advance(candle)
        rows = self._feed.rows
        if rows < self.slow:
            self._closes.append(value)
            return MACDValue(NAN, NAN, NAN)
        if rows == self.slow:
            self._closes.append(value)
            closes = list(self._closes)
            self._slow.value = sum(closes) / self.slow
            self._fast.value = sum(closes[-self.fast:]) / self.fast
        else:
            self._slow.step(value)
            self._fast.step(value)
        line = self._fast.value - self._slow.value
        signal = self._signal.update(line)
        if math.isnan(signal):
            return MACDValue(NAN, NAN, NAN)
        return MACDValue(line, signal, line - signal)


class BollingerValue(NamedTuple):
    """One candle's Bollinger bands."""

    upper: float
    middle: float
    lower: float


class Bollinger:
    """Bollinger bands: SMA +- ``k`` population standard deviations."""

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
        self._window.push(value)
        if self._feed.rows < self.period:
            return BollingerValue(NAN, NAN, NAN)
        mean, var = self._window.mean_var()
        width = self.k * math.sqrt(var)
        return BollingerValue(mean + width, mean, mean - width)


class RangeFeed:
    """True range of each candle after the first (TA-Lib's definition)."""

    def __init__(self) -> None:
        self.feed = _Feed()
        self.previous_close = NAN
        self.previous_high = NAN
        self.previous_low = NAN

    def read(self, candle: CandleLike) -> tuple[float, float, float]:
        """``(high, low, close)`` of the candle, checked."""
        high, low = self.feed.price(candle, "high"), self.feed.price(candle, "low")
        close = self.feed.price(candle, "close")
        self.feed.advance(candle)
        return high, low, close

    def true_range(self, high: float, low: float) -> float:
        """True range against the previous close."""
        return max(high, self.previous_close) - min(low, self.previous_close)

    def remember(self, high: float, low: float, close: float) -> None:
        """Keep this candle as the previous one."""
        self.previous_high, self.previous_low, self.previous_close = high, low, close


class ATR:
    """Average true range (Wilder)."""

    def __init__(self, period: int = 14) -> None:
        self.period = check_period(period, "period")
        self._ranges = RangeFeed()
        self._mean = _Wilder(self.period)

    def update(self, candle: CandleLike) -> float:
        """Take one closed candle and return the ATR at it."""
        high, low, close = self._ranges.read(candle)
        value = NAN
        if self._ranges.feed.rows > 1:
            value = self._mean.step(self._ranges.true_range(high, low))
        self._ranges.remember(high, low, close)
        return value
