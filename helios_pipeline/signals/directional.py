"""Incremental ADX (Wilder's average directional index), one closed candle at a time.

The same steps as :func:`helios_pipeline.signals.indicators.adx_values`: +DM, -DM and true
range summed over the first ``period - 1`` changes, then Wilder-smoothed; DX from the smoothed
sums; ADX = the mean of the first ``period`` DX values, then Wilder's mean of DX. A bar whose DX is
undefined (no range at all) leaves the ADX where it was, as TA-Lib does.
"""

from __future__ import annotations

from helios_pipeline.signals.incremental import NAN, CandleLike, RangeFeed
from helios_pipeline.signals.inputs import check_period


class ADX:
    """Average directional index, 0..100."""

    __slots__ = ("_decay", "_dx_total", "_ranges", "_rows", "_sums", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period(period, "period")
        self._ranges = RangeFeed()
        self._decay = (self.period - 1) / self.period
        self._sums = (0.0, 0.0, 0.0)  # +DM, -DM, TR
        self._dx_total = 0.0
        self._rows = 0
        self.value = NAN

    def update(self, candle: CandleLike) -> float:
        """Take one closed candle and return the ADX at it."""
        return self.step(*self._ranges.read(candle))

    def step(self, high: float, low: float, close: float) -> float:
        """Take one checked candle's high, low and close and return the ADX at it."""
        if self._rows > 0:
            self._step(self._rows, self._movement(high, low))
        self._rows += 1
        self._ranges.remember(high, low, close)
        return self.value

    def _movement(self, high: float, low: float) -> tuple[float, float, float]:
        previous = self._ranges
        diff_plus = high - previous.previous_high
        diff_minus = previous.previous_low - low
        plus = minus = 0.0
        if diff_minus > 0 and diff_plus < diff_minus:
            minus = diff_minus
        elif diff_plus > 0 and diff_plus > diff_minus:
            plus = diff_plus
        return plus, minus, previous.true_range(high, low)

    def _step(self, row: int, movement: tuple[float, float, float]) -> None:
        period = self.period
        plus, minus, true_range = movement
        sum_plus, sum_minus, sum_range = self._sums
        if row < period:
            self._sums = (sum_plus + plus, sum_minus + minus, sum_range + true_range)
            return
        decay = self._decay
        self._sums = (plus + decay * sum_plus, minus + decay * sum_minus,
                      true_range + decay * sum_range)
        dx = self._dx()
        if row > 2 * period - 1:
            if dx == dx:  # a NaN DX (no range at all) leaves the ADX where it was
                self.value = dx / period + decay * self.value
        elif row < 2 * period - 1:
            self._dx_total += dx if dx == dx else 0.0
        else:
            self.value = (self._dx_total + (dx if dx == dx else 0.0)) / period

    def _dx(self) -> float:
        plus, minus, total = self._sums
        if not total > 0:
            return NAN
        plus_di, minus_di = 100.0 * (plus / total), 100.0 * (minus / total)
        di_sum = plus_di + minus_di
        if not di_sum > 0:
            return NAN
        return 100.0 * (abs(minus_di - plus_di) / di_sum)
