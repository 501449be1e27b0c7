"""Release one quarantined candle by hand: store it, record why, rebuild the derived days.

With no reference venue (or when the reference had no data), a real extreme move stays
quarantined by the seed rule. :func:`release_candle` restores one such candle after a person
checked it: the candle goes back into its 1m partition (a new catalog version) flagged
``confirmed_move``, its quarantine record is removed, the release is recorded in the catalog's
``candle_decisions`` (who asked, why, the rules it broke), and 5m..1d of that day are derived
again so they include it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from helios_pipeline.batch.confirm import confirmed_candle
from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES, derive_day
from helios_pipeline.batch.ohlcv import PartitionReport, not_sent
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.storage.candles import CandleStore, PartitionNotFoundError
from helios_pipeline.storage.decisions import CandleDecision, DecisionStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.outcome import ValidationOutcome
from helios_pipeline.validation.rules import ValidationThresholds

_KLINE = ("timestamp", "open", "high", "low", "close", "volume", "close_time_ms",
          "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")


class ReleaseError(ValueError):
    """The candle to release is not quarantined, or its record cannot become a candle."""


@dataclass(frozen=True)
class Released:
    """What a release changed: the candle, the new 1m catalog version, the derived ones."""

    candle: OHLCVData
    minute: PartitionReport
    derived_versions: Mapping[Timeframe, int]


def release_candle(
    candles: CandleStore,
    catalog: MetadataStore,
    quarantine: QuarantineStore,
    exchange_id: str,
    symbol: str,
    open_ms: int,
    reason: str,
    thresholds: ValidationThresholds | None = None,
    decision: CandleDecision | None = None,
) -> Released:
    """Restore the quarantined 1m candle of ``symbol`` opening at ``open_ms``.

    ``decision`` is what the catalog records (default: a ``released`` row with ``reason``).

    Raises:
        ReleaseError: No quarantined 1m candle at that time (the message says which are), or
            its record does not hold a complete candle.
    """
    day = ms_to_datetime(open_ms).date()
    records = quarantine.load_partition(symbol, Timeframe.M1, day)
    chosen = [r for r in records if r.timestamp_ms == open_ms]
    if not chosen:
        held = ", ".join(f"{ms_to_datetime(r.timestamp_ms):%H:%M}" for r in records
                         if r.timestamp_ms is not None) or "none"
        raise ReleaseError(f"No quarantined 1m candle of {symbol} at "
                           f"{ms_to_datetime(open_ms):%Y-%m-%d %H:%M} UTC; quarantined that "
                           f"day: {held}.")
    record = chosen[0]
    candle = confirmed_candle(candle_of(record, symbol), record.rules,
                              thresholds or ValidationThresholds())
    rest = [r for r in records if r is not record]
    try:
        stored = candles.load(symbol, Timeframe.M1, day)
    except PartitionNotFoundError:
        stored = []
    kept = [*stored, candle]
    partition = candles.store(symbol, Timeframe.M1, day, kept)
    partition = replace(partition, missing_ranges=not_sent(ValidationOutcome(kept, rest),
                                                           Timeframe.M1, day))
    quarantine.store_partition(symbol, Timeframe.M1, day, rest)
    row = catalog.record_partition(exchange_id, symbol, Timeframe.M1, day, partition,
                                   source=f"released by hand: {reason}", quarantined=len(rest))
    DecisionStore(catalog.path).record([decision or CandleDecision(
        exchange_id, symbol, "1m", open_ms, "released", tuple(record.rules),
        evidence={"reason": reason, "quarantined_values": dict(record.values)})])
    derived = {tf: derive_day(candles, catalog, exchange_id, symbol, day, tf).record.version
               for tf in DERIVED_TIMEFRAMES}
    report = PartitionReport(symbol=symbol, day=day, record=row, changed=partition.changed,
                             quarantined=len(rest), soft_flagged=0)
    return Released(candle, report, derived)


def candle_of(record: QuarantineRecord, symbol: str) -> OHLCVData:
    """The candle a quarantine record holds (a candle's fields, or a raw kline row).

    Raises:
        ReleaseError: A field is missing or not a number.
    """
    raw = record.raw
    fields: Mapping[str, object]
    if isinstance(raw, Mapping):
        fields = raw
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        fields = dict(zip(_KLINE, raw, strict=False))
    else:
        raise ReleaseError(f"The quarantine record at {record.timestamp_ms} holds no candle.")
    try:
        return OHLCVData(
            symbol=symbol, timestamp=ms_to_datetime(int(str(record.timestamp_ms))),
            timeframe=Timeframe.M1,
            open=_exact(fields["open"]), high=_exact(fields["high"]),
            low=_exact(fields["low"]), close=_exact(fields["close"]),
            volume=_exact(fields["volume"]), trades=_int(fields.get("trades")),
            taker_buy_volume=_optional(fields.get("taker_buy_volume")),
            quote_volume=_optional(fields.get("quote_volume")),
            taker_buy_quote_volume=_optional(fields.get("taker_buy_quote_volume")),
            close_time_ms=_int(fields.get("close_time_ms")),
        )
    except (KeyError, ArithmeticError, ValueError, TypeError) as exc:
        raise ReleaseError(f"The quarantine record at {record.timestamp_ms} is not a complete "
                           f"candle ({exc!r}); it cannot be released.") from None


def _exact(value: object) -> Decimal:
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _optional(value: object) -> Decimal | None:
    return None if value is None or value == "" else _exact(value)


def _int(value: object) -> int | None:
    return None if value is None or value == "" else int(str(value))


def parse_time(text: str) -> int:
    """A UTC minute (``2020-03-12T12:00`` or ``2020-03-12 12:00``) as ms epoch.

    Raises:
        ValueError: Not a time, not UTC, or not on a whole minute.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time; use YYYY-MM-DDTHH:MM (UTC).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.second or moment.microsecond:
        raise ValueError(f"{text!r} is not a whole minute; candles open on the minute.")
    return int(moment.timestamp()) * 1000
