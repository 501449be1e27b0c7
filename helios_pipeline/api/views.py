"""JSON shapes of the read API's answers: prices and volumes as exact decimal strings."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

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
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item())
    return value


def candles_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One object per candle: ``time`` (UTC open time, ISO 8601) and :data:`CANDLE_FIELDS`."""
    fields = [name for name in CANDLE_FIELDS if name in frame.columns]
    rows: list[dict[str, Any]] = []
    for moment, values in zip(frame.index, frame[fields].itertuples(index=False), strict=True):
        row: dict[str, Any] = {"time": pd.Timestamp(moment).isoformat()}
        row.update({name: json_value(value) for name, value in zip(fields, values, strict=True)})
        rows.append(row)
    return rows


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
