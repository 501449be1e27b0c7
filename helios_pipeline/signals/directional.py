"""Incremental ADX (Wilder's average directional index), one closed candle at a time.

The same steps as :func:`helios_pipeline.signals.indicators.adx_values`: +DM, -DM and true
range summed over the first ``period - 1`` changes, then Wilder-smoothed; DX from the smoothed
sums; ADX = the mean of the first ``period`` DX values, then Wilder's mean of DX. A bar whose DX is
undefined (no range at all) leaves the ADX where it was, as TA-Lib does.
"""

from __future__ import annotations

import math

from helios_pipeline.signals.incremental import NAN, CandleLike, RangeFeed
from helios_pipeline.signals.inputs import check_period


class ADX:
    """Average directional index, 0..100."""

    def __init__(self, period: int = 14) -> None:
        self.period = check_period(period, "period")
        self._ranges = RangeFeed()
        self._decay = (self.period - 1) / self.period
        self._sums = [0.0, 0.0, 0.0]  # +DM, -DM, TR
        self._dx_total = 0.0
        self.value = NAN

    def update(self, candle: CandleLike) -> float:
        """Take one closed candle and return the ADX at it."""
        high, low, close = self._ranges.read(candle)
        row = self._ranges.feed.rows - 1
        if row > 0:
            self._step(row, self._movement(high, low))
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
        if row < period:
            self._sums = [total + value for total, value in zip(self._sums, movement, strict=True)]
            return
        self._sums = [value + self._decay * total
                      for total, value in zip(self._sums, movement, strict=True)]
        dx = self._dx()
        if row < 2 * period - 1:
            self._dx_total += 0.0 if math.isnan(dx) else dx
        elif row == 2 * period - 1:
            self.value = (self._dx_total + (0.0 if math.isnan(dx) else dx)) / period
        elif not math.isnan(dx):
            self.value = dx / period + self._decay * self.value

    def _dx(self) -> float:
        plus, minus, total = self._sums
        if not total > 0:
            return NAN
        plus_di, minus_di = 100.0 * (plus / total), 100.0 * (minus / total)
        di_sum = plus_di + minus_di
        if not di_sum > 0:
            return NAN
        return 100.0 * (abs(minus_di - plus_di) / di_sum)
