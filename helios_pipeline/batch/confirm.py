"""Confirm a candle that broke a price rule against a reference venue before quarantining it.

A real crash breaks ``price_jump`` on every venue at once; a bad print breaks it on one. So a
candle refused *only* for price rules (``price_jump``, ``absurd_price``) is checked against the
reference venue's 1m candles of the same symbol within ``TOLERANCE_MINUTES`` of its open time
(venues' clocks and matching engines do not cut minutes identically):

* confirmed when the reference printed the same extremes: its lowest low in the window is at
  most the candle's low x (1 + ``max_divergence``) and its highest high at least the candle's
  high x (1 - ``max_divergence``). The candle is stored with the soft flag ``confirmed_move``,
  and the reference candles go into the catalog (``storage.decisions``) as evidence;
* not confirmed (the reference did not move, or has no candle there) -> quarantined as before,
  with ``unconfirmed_by=<venue>`` in the record's values.

A candle that also broke another hard rule (not a number, inconsistent OHLC, ...) is bad data
whatever the reference says and is never confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.storage.decisions import CandleDecision
from helios_pipeline.validation.outcome import ValidationOutcome
from helios_pipeline.validation.rules import (
    CONFIRMED_MOVE,
    PRICE_RULES,
    UNCONFIRMED_BY,
    ValidationThresholds,
    ordered,
    score,
)

__all__ = ["CONFIRMED_MOVE", "PRICE_RULES", "UNCONFIRMED_BY", "Confirmed", "confirm_outcome",
           "confirmed_candle", "reference_confirms", "reference_values", "reference_window",
           "venue_name"]
TOLERANCE_MINUTES = 1


@dataclass(frozen=True)
class Confirmed:
    """A validation outcome after confirmation, and the decisions to record in the catalog."""

    outcome: ValidationOutcome
    decisions: list[CandleDecision]


def venue_name(client: ExchangeClient) -> str:
    """How a reference venue is named in flags and records (its qualifier, else its id)."""
    return client.qualifier or client.exchange_id


async def confirm_outcome(
    reference: ExchangeClient,
    exchange: str,
    candles: Sequence[OHLCVData],
    outcome: ValidationOutcome,
    thresholds: ValidationThresholds | None = None,
) -> Confirmed:
    """Confirm or keep quarantined each candle of ``outcome`` refused only for price rules.

    Args:
        reference: Open client of the reference venue.
        exchange: The primary venue's catalog exchange id (for the decisions).
        candles: The candles that were validated (the refused ones are looked up by open time).
        outcome: Their validation outcome.
        thresholds: Thresholds (``max_divergence`` is the tolerance between venues' prices).
    """
    t = thresholds or ValidationThresholds()
    by_time = {datetime_to_ms(c.timestamp): c for c in candles}
    accepted, quarantined, decisions = list(outcome.accepted), [], []
    venue = venue_name(reference)
    for record in outcome.quarantined:
        candle = by_time.get(record.timestamp_ms) if record.timestamp_ms is not None else None
        if candle is None or not record.rules or not set(record.rules) <= PRICE_RULES:
            quarantined.append(record)
            continue
        window = await reference_window(reference, candle)
        evidence = {"venue": venue, "candles": [reference_values(c) for c in window]}
        confirmed = reference_confirms(candle, window, t.max_divergence)
        decisions.append(CandleDecision(
            exchange, candle.symbol, candle.timeframe.value, datetime_to_ms(candle.timestamp),
            "confirmed" if confirmed else "unconfirmed", tuple(record.rules), venue, evidence))
        if confirmed:
            accepted.append(confirmed_candle(candle, record.rules, t))
        else:
            quarantined.append(replace(record, values={**record.values, UNCONFIRMED_BY: venue}))
    accepted.sort(key=lambda c: c.timestamp)
    return Confirmed(ValidationOutcome(accepted, quarantined), decisions)


def confirmed_candle(candle: OHLCVData, rules: Sequence[str],
                     thresholds: ValidationThresholds) -> OHLCVData:
    """``candle`` as stored after confirmation or release: validated, flagged, scored."""
    flags = ordered({*candle.anomaly_flags, CONFIRMED_MOVE})
    return replace(candle, is_validated=True, anomaly_flags=flags,
                   validation_score=score(0, len(flags), thresholds.soft_penalty))


async def reference_window(reference: ExchangeClient, candle: OHLCVData) -> list[OHLCVData]:
    """The reference venue's 1m candles within ``TOLERANCE_MINUTES`` of ``candle``."""
    open_ms = datetime_to_ms(candle.timestamp)
    span = TOLERANCE_MINUTES * MINUTE_MS
    return await reference.fetch_ohlcv(candle.symbol, Timeframe.M1, open_ms - span,
                                       open_ms + span + MINUTE_MS)


def reference_confirms(candle: OHLCVData, window: Sequence[OHLCVData], tolerance: float) -> bool:
    """Whether the reference printed ``candle``'s extremes (within ``tolerance``)."""
    if not window:
        return False
    slack = Decimal(repr(tolerance))
    low = min(c.low for c in window)
    high = max(c.high for c in window)
    return low <= candle.low * (1 + slack) and high >= candle.high * (1 - slack)


def reference_values(candle: OHLCVData) -> dict[str, str]:
    """A reference candle as evidence: its open time and values as text."""
    return {"open_ms": str(datetime_to_ms(candle.timestamp)), "open": str(candle.open),
            "high": str(candle.high), "low": str(candle.low), "close": str(candle.close),
            "volume": str(candle.volume)}

