"""Checking a query's arguments: symbols, timeframes, moments, limits.

Every refusal is a :class:`~helios_pipeline.query.errors.QueryError` that names the argument and
what it accepts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from helios_pipeline.domain.symbols import SymbolError, normalize_symbol
from helios_pipeline.domain.timeframe import Bucket, Timeframe, datetime_to_ms
from helios_pipeline.query.errors import QueryError

Moment = datetime | date | pd.Timestamp | int | str
STORED = {t.value: t for t in Timeframe}


def symbol_arg(symbol: str) -> str:
    """The ccxt unified form of ``symbol``."""
    try:
        return normalize_symbol(symbol)
    except SymbolError as exc:
        raise QueryError(f"symbol={symbol!r}: {exc}") from None


def timeframe_arg(timeframe: str | Timeframe) -> Timeframe | Bucket:
    """A stored timeframe, or any other ccxt length (aggregated from 1m candles)."""
    if isinstance(timeframe, Timeframe):
        return timeframe
    text = str(timeframe).strip()
    if text in STORED:
        return STORED[text]
    try:
        return Bucket.parse(text)
    except ValueError as exc:
        raise QueryError(f"timeframe={timeframe!r}: {exc}") from None


def moment_ms(name: str, value: Moment | None) -> int | None:
    """A moment as ms epoch UTC.

    Accepted: a tz-aware datetime or Timestamp, a date (its 00:00 UTC), an ISO string with an
    offset or ``Z``, or an int of epoch milliseconds.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise QueryError(f"{name}={value!r}: give a moment, not a bool.")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value)
        except ValueError:
            raise QueryError(f"{name}={value!r}: not a date or time; use ISO 8601, e.g. "
                             "'2024-05-01T00:00Z'.") from None
    if isinstance(value, datetime):  # also pd.Timestamp
        if value.tzinfo is None:
            raise QueryError(f"{name}={value.isoformat()!r} has no time zone; give a UTC "
                             "moment (tz-aware, or an ISO string ending in Z).")
        return datetime_to_ms(value)
    if isinstance(value, date):
        return datetime_to_ms(datetime(value.year, value.month, value.day, tzinfo=UTC))
    raise QueryError(f"{name}={value!r}: expected a datetime, date, ISO string or epoch ms.")


def limit_arg(limit: int | None) -> int | None:
    """A positive whole number of candles, or ``None``."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise QueryError(f"limit={limit!r}: give a positive whole number of candles.")
    return limit


def span_args(start: Moment | None, end: Moment | None, now_ms: int) -> tuple[int | None, int]:
    """``(start_ms or None, end_ms)``; the end defaults to now and never passes it."""
    start_ms, end_ms = moment_ms("start", start), moment_ms("end", end)
    end_ms = now_ms if end_ms is None else min(end_ms, now_ms)
    if start_ms is not None and start_ms > end_ms:
        raise QueryError(f"start={start!r} is after end={end if end is not None else 'now'!r}; "
                         "give a start before the end.")
    return start_ms, end_ms
