"""Daily data-quality assessment: gather a day's candles, catalog and quarantine, assess, report.

Plain Python; the ``data_quality_report`` Dagster asset and ``helios demo`` call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.timeframe import Timeframe, day_start_ms, ms_to_datetime
from helios_pipeline.quality.detectors import HeldMove
from helios_pipeline.quality.monitor import DataQualityMonitor, QualitySummary, SymbolData
from helios_pipeline.quality.report import write_quality_report
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path, quality_report_path
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.rules import (
    MOVE_NOT_CHECKED,
    MOVE_UNCONFIRMED,
    PRICE_RULES,
    UNCONFIRMED_BY,
)


@dataclass(frozen=True)
class Venue:
    """Where one venue's data lives.

    Attributes:
        exchange: ccxt exchange id (catalog key).
        data_dir: Data root.
        qualifier: Storage-id qualifier of its files (``okx`` -> ``okx.BTCUSDT``), where several
            exchanges share a data root; ``None`` for the primary exchange.
    """

    exchange: str
    data_dir: Path
    qualifier: str | None = None


@dataclass(frozen=True)
class QualityReport:
    """The assessment of one day and where its HTML report was written."""

    summary: QualitySummary
    path: Path


def assess_day(
    venue: Venue, symbols: Sequence[str], day: date, reference: Venue | None = None
) -> QualityReport:
    """Assess every symbol's 1m data of ``day`` and write the day's HTML report.

    Args:
        venue: The primary exchange and its data root.
        symbols: ccxt unified symbols.
        day: UTC day.
        reference: A second venue with the same symbols, for cross-exchange divergence.
    """
    inputs = [_symbol_data(venue, symbol, day, reference) for symbol in symbols]
    summary = _assess(inputs, day)
    frames = {item.symbol: item.candles for item in inputs}
    held = [move for symbol in symbols for move in held_moves(venue, symbol, day)]
    path = write_quality_report(summary, frames, quality_report_path(venue.data_dir, day), held)
    return QualityReport(summary, path)


def held_moves(venue: Venue, symbol: str, day: date) -> list[HeldMove]:
    """The day's candles quarantined for price rules only, one by one (see :func:`_rules`)."""
    records = QuarantineStore(venue.data_dir).load(symbol, day, day, venue.qualifier)
    moves = []
    for record in records:
        if record.timestamp_ms is None or not record.rules or not set(record.rules) <= PRICE_RULES:
            continue
        fields = dict(record.values)
        moves.append(HeldMove(symbol, record.timestamp_ms, record.rules, fields,
                              fields.get(UNCONFIRMED_BY)))
    return moves


def summarize_day(
    venue: Venue, symbols: Sequence[str], day: date, reference: Venue | None = None
) -> QualitySummary:
    """Assess every symbol's 1m data of ``day`` as :func:`assess_day` does, writing nothing."""
    return _assess([_symbol_data(venue, symbol, day, reference) for symbol in symbols], day)


def _assess(inputs: list[SymbolData], day: date) -> QualitySummary:
    start = ms_to_datetime(day_start_ms(day))
    return DataQualityMonitor().assess(inputs, start, start + timedelta(days=1))


def _symbol_data(venue: Venue, symbol: str, day: date, reference: Venue | None) -> SymbolData:
    catalog = MetadataStore(metadata_path(venue.data_dir)).list_partitions(
        exchange=venue.exchange, symbol=symbol, timeframe=Timeframe.M1, start=day, end=day
    )
    quarantined = QuarantineStore(venue.data_dir).load(symbol, day, day, venue.qualifier)
    return SymbolData(
        symbol=symbol,
        candles=_frame(venue, symbol, day),
        exchange=venue.exchange,
        catalog=catalog,
        quarantine=[(r.timestamp_ms or 0, _rules(r)) for r in quarantined],
        reference_closes=(
            _frame(reference, symbol, day)["close"] if reference is not None else None
        ),
        reference_exchange=reference.exchange if reference is not None else None,
    )


def _rules(record: QuarantineRecord) -> tuple[str, ...]:
    """A record's rules, plus a name of its own for a price move nobody confirmed.

    A candle quarantined only for price rules may be a real move: the report lists it apart,
    as ``price_move_unconfirmed`` (the reference venue did not show it) or
    ``price_move_no_reference`` (no reference venue was asked: check it, and release it with
    ``helios quarantine release`` if it was real).
    """
    if not record.rules or not set(record.rules) <= PRICE_RULES:
        return record.rules
    asked = UNCONFIRMED_BY in record.values  # noqa: PD011 (a record's values, not pandas)
    marker = MOVE_UNCONFIRMED if asked else MOVE_NOT_CHECKED
    return (*record.rules, marker)


def _frame(venue: Venue, symbol: str, day: date) -> pd.DataFrame:
    store = CandleStore(venue.data_dir)
    return store.load_frame(symbol, Timeframe.M1, day, day, exchange=venue.qualifier)
