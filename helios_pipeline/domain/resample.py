"""Derived candles: aggregate 1-minute candles into longer timeframes, exactly.

A derived candle is built only from the 1-minute candles that exist; a bucket with minutes
missing is still built (that is what trading happened) but says so in ``anomaly_flags``
(``partial_bucket``), so nothing downstream mistakes it for a complete candle. No value is
invented and Decimal sums keep every digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import groupby, pairwise

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms, ms_to_datetime

PARTIAL_BUCKET = "partial_bucket"


def aggregate_candles(candles: Sequence[OHLCVData], target: Timeframe) -> list[OHLCVData]:
    """Aggregate 1-minute candles (sorted by open time) into ``target`` candles.

    Raises:
        ValueError: A candle is not 1-minute, or the input is not sorted by open time.
    """
    for candle in candles:
        if candle.timeframe is not Timeframe.M1:
            raise ValueError(
                f"Only 1m candles can be aggregated; got {candle.timeframe.value} for "
                f"{candle.symbol} at {candle.timestamp.isoformat()}."
            )
    times = [datetime_to_ms(c.timestamp) for c in candles]
    if any(b <= a for a, b in pairwise(times)):
        raise ValueError("1m candles must be sorted by open time without duplicates.")
    by_bucket = groupby(zip(times, candles, strict=True), key=lambda pair: target.floor(pair[0]))
    return [_bucket(target, start, [c for _, c in members]) for start, members in by_bucket]


def _bucket(target: Timeframe, start_ms: int, members: list[OHLCVData]) -> OHLCVData:
    first, last = members[0], members[-1]
    expected = target.ms // Timeframe.M1.ms
    flags = (PARTIAL_BUCKET,) if len(members) < expected else ()
    return OHLCVData(
        symbol=first.symbol,
        timestamp=ms_to_datetime(start_ms),
        timeframe=target,
        open=first.open,
        high=max(c.high for c in members),
        low=min(c.low for c in members),
        close=last.close,
        volume=_sum(c.volume for c in members),
        trades=_sum_int(c.trades for c in members),
        taker_buy_volume=_sum_optional(c.taker_buy_volume for c in members),
        quote_volume=_sum_optional(c.quote_volume for c in members),
        taker_buy_quote_volume=_sum_optional(c.taker_buy_quote_volume for c in members),
        close_time_ms=start_ms + target.ms - 1,
        is_validated=all(c.is_validated for c in members),
        validation_score=min(c.validation_score for c in members),
        anomaly_flags=tuple(sorted({*flags, *(f for c in members for f in c.anomaly_flags)})),
    )


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _sum_optional(values: Iterable[Decimal | None]) -> Decimal | None:
    """Sum, or ``None`` when any member lacks the value (a partial sum would be invented)."""
    collected = list(values)
    if any(v is None for v in collected):
        return None
    return _sum(v for v in collected if v is not None)


def _sum_int(values: Iterable[int | None]) -> int | None:
    collected = list(values)
    if any(v is None for v in collected):
        return None
    return sum(v for v in collected if v is not None)
