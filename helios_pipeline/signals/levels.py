"""Support and resistance: swing highs and lows clustered by price, weighted by volume and touches.

Method:

1. **Swings.** A bar is a swing high when its high is the highest of the ``2 * swing_window + 1``
   bars centred on it (a swing low: its low the lowest). The last ``swing_window`` bars cannot be
   confirmed yet and are not used.
2. **Clusters.** Swing prices, sorted, are split wherever two neighbours are more than
   ``tolerance`` apart; ``tolerance = cluster_atr * ATR(14)`` at the last bar (default 0.5 ATR):
   prices closer than half a typical bar's range are one level.
3. **Level.** Its price is the volume-weighted mean of its swings' prices; ``touches`` is how many
   swings it holds, ``volume`` the volume of those swing bars, ``last_touch`` the latest of them.
4. **Strength** (0..1) = ``touch_weight`` x touches / most touches of any level +
   (1 - ``touch_weight``) x volume / largest volume of any level; default weight 0.5.
5. A level below the last close is ``support``, one at or above it ``resistance``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from helios_pipeline.signals import indicators as ind
from helios_pipeline.signals.inputs import FloatArray, prepare


@dataclass(frozen=True)
class Level:
    """One support or resistance level."""

    price: float
    kind: str
    strength: float
    touches: int
    volume: float
    last_touch: object


@dataclass(frozen=True)
class LevelRules:
    """Parameters of the method (see the module docstring)."""

    swing_window: int = 3
    cluster_atr: float = 0.5
    atr_period: int = 14
    touch_weight: float = 0.5


def find_levels(candles: pd.DataFrame, rules: LevelRules = LevelRules()) -> list[Level]:
    """Support and resistance levels of ``candles``, ascending by price.

    Args:
        candles: Float ``high``, ``low``, ``close``, ``volume`` columns; the index gives each
            level's ``last_touch``.
        rules: Parameters of the method.

    Raises:
        ValueError: Bad candles (see :func:`helios_pipeline.signals.inputs.prepare`).
    """
    need = max(2 * rules.swing_window + 1, rules.atr_period + 1)
    data = prepare([("high", candles["high"]), ("low", candles["low"]),
                    ("close", candles["close"]), ("volume", candles["volume"])], need,
                   "the levels' longest window")
    high, low, close, volume = data.arrays
    rows = np.concatenate([_swings(high, rules.swing_window, np.max),
                           _swings(low, rules.swing_window, np.min)])
    prices = np.concatenate([high, low])[rows]
    rows = rows % high.size
    tolerance = rules.cluster_atr * float(ind.atr_values(high, low, close, rules.atr_period)[-1])
    return _clusters(prices, volume[rows], rows, tolerance, float(close[-1]), rules,
                     candles.index)


def _swings(values: FloatArray, window: int, pick: object) -> npt.NDArray[np.intp]:
    """Rows (offset by ``values.size`` for lows) whose value is the extreme of its window."""
    span = 2 * window + 1
    windows = sliding_window_view(values, span)
    extreme = windows.max(axis=1) if pick is np.max else windows.min(axis=1)
    centre = values[window: values.size - window]
    rows = np.flatnonzero(centre == extreme) + window
    return rows if pick is np.max else rows + values.size


def _clusters(prices: FloatArray, volumes: FloatArray, rows: npt.NDArray[np.intp],
              tolerance: float, last_close: float, rules: LevelRules,
              when: pd.Index) -> list[Level]:
    if prices.size == 0:
        return []
    order = np.argsort(prices, kind="stable")
    prices, volumes, rows = prices[order], volumes[order], rows[order]
    starts = np.r_[0, np.flatnonzero(np.diff(prices) > tolerance) + 1]
    touches = np.diff(np.r_[starts, prices.size])
    weights = np.where(volumes > 0, volumes, 0.0)
    volume = np.add.reduceat(weights, starts)
    weighted = np.add.reduceat(prices * weights, starts)
    plain = np.add.reduceat(prices, starts) / touches
    price = np.where(volume > 0, weighted / np.where(volume > 0, volume, 1.0), plain)
    latest = np.maximum.reduceat(rows, starts)
    most_volume = float(volume.max()) or 1.0
    strength = (rules.touch_weight * touches / touches.max()
                + (1 - rules.touch_weight) * volume / most_volume)
    return [Level(price=float(p), kind="support" if p < last_close else "resistance",
                  strength=float(s), touches=int(t), volume=float(v), last_touch=when[int(r)])
            for p, s, t, v, r in zip(price, strength, touches, volume, latest, strict=True)]
