"""Indicators of stored candles: the window plus the candles before it that warm them up.

Recursive indicators (EMA, Wilder's RSI/ATR/ADX) depend on every earlier candle; here the
computation starts ``warmup`` candles (default :data:`WARMUP_BARS`) before the window, so the
values are exactly what the batch functions give for that input, whoever asks: research code,
``MarketDataQuery.indicators`` and the Dagster indicator assets read the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from helios_pipeline.query.errors import QueryError
from helios_pipeline.signals.frame import COLUMNS, DEFAULT_PARAMS, IndicatorParams, indicator_frame
from helios_pipeline.storage.hot.live_indicators import LiveIndicatorValues

# After 250 candles the seed of an EMA(26) or a Wilder(14) mean weighs less than 1e-8 of the
# value: a window's indicators barely depend on how much older history exists.
WARMUP_BARS = 250
Reader = Callable[..., pd.DataFrame]


def indicators_with_warmup(read: Reader, label: str, start: object, end: object,
                           warmup: int = WARMUP_BARS,
                           params: IndicatorParams = DEFAULT_PARAMS,
                           short_ok: bool = False) -> pd.DataFrame:
    """Indicators over ``[start, end)`` from float candles ``read`` returns.

    Args:
        read: ``read(start=..., end=..., limit=...)`` -> float candle frame (``ohlcv`` bound to
            a symbol, timeframe and venue, ``as_float=True``).
        label: The call, for error messages.
        start: First open time of the window (``None``: from the first stored candle).
        end: Open times before it.
        warmup: Candles before ``start`` fed in first and then dropped.
        params: Indicator periods.
        short_ok: Fewer candles than the longest period give NaN columns (all warm-up) instead
            of an error; for stored daily tables, where the first days of a history are short.

    Returns:
        ``close`` and the indicator columns on the window's open times.

    Raises:
        QueryError: Too few candles for the longest indicator period, or bad candles.
    """
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise QueryError(f"{label}: warmup={warmup!r} must be a whole number of candles >= 0.")
    window = read(start=start, end=end, limit=None)
    before = (read(start=None, end=start, limit=warmup)
              if start is not None and warmup > 0 else window.iloc[:0])
    candles = pd.concat([before, window]) if len(before) else window
    if short_ok and len(candles) < params.longest:
        table = pd.DataFrame(np.nan, index=candles.index, columns=list(COLUMNS))
        table.insert(0, "close", candles["close"])
        return table.iloc[len(before):]
    try:
        table = indicator_frame(candles, params)
    except ValueError as exc:
        raise QueryError(f"{label}: {exc}") from None
    table.insert(0, "close", candles["close"])
    return table.iloc[len(before):]


def live_frame(latest: LiveIndicatorValues | None) -> pd.DataFrame:
    """The stream service's latest values as one row shaped like :func:`indicators_with_warmup`.

    ``close`` and the indicator columns (float; NaN in a warm-up) on the candle's UTC open time;
    no row when the stream service keeps no values for it.
    """
    columns = ["close", *COLUMNS]
    if latest is None:
        return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC",
                                                                    name="timestamp"),
                            dtype="float64")
    index = pd.DatetimeIndex([pd.Timestamp(latest.open_ms, unit="ms", tz="UTC")],
                             name="timestamp")
    row = {name: [latest.indicators.get(name, np.nan)] for name in columns}
    return pd.DataFrame(row, index=index, dtype="float64")
