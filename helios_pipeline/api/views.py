"""JSON shapes of the read API's answers: prices and volumes as exact decimal strings."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from helios_pipeline.quality.monitor import QualitySummary, SymbolQuality

# Candle fields served, in order; a frame lacking one (``partial_bucket`` is only there for
# aggregated timeframes) simply omits it.
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades",
                 "partial_bucket", "tier")


def json_value(value: Any) -> Any:
    """A JSON-safe value: ``Decimal`` as its exact string, NaN and None as ``null``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item())
    return value


def decimal_text(value: Decimal) -> str:
    """The exact value in plain notation, without the storage scale's trailing zeros.

    ``Decimal("18865.580000000000000000")`` -> ``"18865.58"``, ``Decimal("1E-8")`` ->
    ``"0.00000001"`` (never an exponent, which some JSON clients would turn into a float).
    """
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def candles_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One object per candle: ``time`` (UTC open time, ISO 8601) and :data:`CANDLE_FIELDS`.

    Built column by column (a day of 1m candles is 1,440 x 9 values).
    """
    fields = [name for name in CANDLE_FIELDS if name in frame.columns]
    index = pd.DatetimeIndex(frame.index).tz_convert("UTC").tz_localize(None)
    times = [f"{text}+00:00" for text in np.datetime_as_string(index.to_numpy(), unit="s")]
    columns = [_column(frame[name]) for name in fields]
    return [{"time": moment, **dict(zip(fields, values, strict=True))}
            for moment, *values in zip(times, *columns, strict=True)]


def _column(series: pd.Series) -> list[Any]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [None if value is None or value != value else str(value)
                for value in series.astype(object).tolist()]
    values = series.astype(object).where(series.notna(), None).tolist()
    if series.dtype == object:
        return [decimal_text(value) if isinstance(value, Decimal) else json_value(value)
                for value in values]
    return [json_value(value) for value in values]


def quality_json(summary: QualitySummary) -> dict[str, Any]:
    """The day's overall status and each symbol's status, score and reasons."""
    return {"status": summary.status, "reasons": list(summary.reasons),
            "generated_at": summary.generated_at.isoformat(),
            "symbols": [_symbol_quality(s) for s in summary.symbols]}


def _symbol_quality(quality: SymbolQuality) -> dict[str, Any]:
    return {"symbol": quality.symbol, "exchange": quality.exchange, "status": quality.status,
            "score": quality.score, "rows": quality.rows, "expected_rows": quality.expected_rows,
            "completeness": quality.completeness,
            "missing_minutes": quality.gaps.missing_minutes,
            "quarantined_rows": quality.quarantine.rows, "reasons": list(quality.reasons)}
