"""Re-examine quarantined price moves once the reference venue has data for them.

Confirmation (``batch.confirm``) asks the reference venue while the primary's candles are
ingested. When the reference could not answer then (not configured yet, down, or its history
starts later) a real move stays quarantined. :func:`reexamine_day` asks again for every candle
of a day quarantined only for price rules: a confirmed one is restored like a release by hand
(a new 1m version, the derived days rebuilt) with a ``confirmed`` decision and the reference's
candles as evidence in the catalog; the others stay quarantined.
"""

from __future__ import annotations

from datetime import date

from helios_pipeline.batch.confirm import (
    PRICE_RULES,
    confirmed_candle,
    reference_confirms,
    reference_values,
    reference_window,
    venue_name,
)
from helios_pipeline.batch.release import Released, candle_of, release_candle
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.decisions import CandleDecision
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.rules import ValidationThresholds


def reexaminable(quarantine: QuarantineStore, symbol: str, day: date) -> list[int]:
    """Open times of the day's 1m candles quarantined for price rules only.

    Only those can a reference venue confirm; a candle that broke any other rule is never
    re-examined.
    """
    return [r.timestamp_ms for r in quarantine.load_partition(symbol, Timeframe.M1, day)
            if r.timestamp_ms is not None and r.rules and set(r.rules) <= PRICE_RULES]


async def reexamine_day(
    reference: ExchangeClient,
    candles: CandleStore,
    catalog: MetadataStore,
    quarantine: QuarantineStore,
    exchange_id: str,
    symbol: str,
    day: date,
    thresholds: ValidationThresholds | None = None,
) -> list[Released]:
    """Restore the day's quarantined price moves that ``reference`` now confirms.

    Returns:
        One entry per restored candle, in time order.
    """
    t = thresholds or ValidationThresholds()
    venue = venue_name(reference)
    restored = []
    wanted = set(reexaminable(quarantine, symbol, day))
    for record in quarantine.load_partition(symbol, Timeframe.M1, day):
        if record.timestamp_ms is None or record.timestamp_ms not in wanted:
            continue
        candle = confirmed_candle(candle_of(record, symbol), record.rules, t)
        window = await reference_window(reference, candle)
        if not reference_confirms(candle, window, t.max_divergence):
            continue
        decision = CandleDecision(
            exchange_id, symbol, "1m", record.timestamp_ms, "confirmed", tuple(record.rules),
            venue, {"venue": venue, "candles": [reference_values(c) for c in window],
                    "reexamined": True})
        restored.append(release_candle(candles, catalog, quarantine, exchange_id, symbol,
                                       record.timestamp_ms, f"confirmed by {venue}", t,
                                       decision))
    return restored
