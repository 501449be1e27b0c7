"""The checks of stored candle partitions, as plain Python: one outcome per partition.

The Dagster checks on the candle assets report these (``defs.checks``); research code can run
them too. Each takes every partition of a run at once, so the fixed costs (pandera, Great
Expectations) are paid once per run, not once per day:

* :func:`schema_outcomes`: the stored files against the pandera model
  :class:`~helios_pipeline.validation.stored.StoredCandles` (blocking in Dagster);
* :func:`expectation_outcomes`: the Great Expectations suite of the validation rules over the
  stored candles (statistical rules: price jumps, price vs recent average, volume outliers);
* :func:`gap_outcome`: what the exchange did not send (recorded, never filled);
* :func:`consistency_outcome`: a day's derived candles vs the exchange's own, every timeframe.

Metadata values are plain ints, floats and strings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from helios_pipeline.batch.confirm import CONFIRMED_MOVE, PRICE_RULES
from helios_pipeline.batch.derived import ConsistencyReport
from helios_pipeline.domain.columns import ANOMALY_FLAGS
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.storage.candles import CandleStore, PartitionNotFoundError
from helios_pipeline.storage.catalog_rows import PartitionRecord
from helios_pipeline.validation.expectations import candle_expectation_rules_by_day
from helios_pipeline.validation.rules import HARD_RULES, ValidationThresholds
from helios_pipeline.validation.stored import stored_failures, stored_frame
from helios_pipeline.validation.tables import candle_frame

SHOWN = 10  # offending rows or ranges listed in a check's metadata
MINUTES_PER_DAY = 1440
Metadata = dict[str, int | float | str]


@dataclass(frozen=True)
class CheckOutcome:
    """One partition's check result."""

    passed: bool
    metadata: Metadata = field(default_factory=dict)


def schema_outcomes(
    store: CandleStore, symbol: str, days: Sequence[date], exchange: str | None = None
) -> dict[date, CheckOutcome]:
    """Each stored 1m partition of ``days`` against the stored-partition model."""
    tables: list[tuple[date, pa.Table]] = []
    outcomes: dict[date, CheckOutcome] = {}
    for day in days:
        try:
            tables.append((day, store.load_table(symbol, Timeframe.M1, day, exchange)))
        except PartitionNotFoundError as exc:
            outcomes[day] = CheckOutcome(False, {"error": str(exc)})
    failures = stored_failures(stored_frame(tables))
    starts, offset = [], 0
    for _, table in tables:
        starts.append(offset)
        offset += table.num_rows
    for (day, table), start in zip(tables, starts, strict=True):
        mine = [(row - start, check) for row, check in failures
                if start <= row < start + table.num_rows or row < 0]
        outcomes[day] = CheckOutcome(not mine, {
            "rows_checked": table.num_rows,
            "failures": len(mine),
            "first_failures": _rows_text(table, mine) or "none",
        })
    return outcomes


def expectation_outcomes(
    tables: Sequence[tuple[date, pa.Table]], thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
) -> dict[date, CheckOutcome]:
    """The rules' Great Expectations suite over each day's stored 1m candles.

    A hard rule failing on stored candles fails the check (they would be quarantined by a
    re-run with these thresholds); soft findings (volume outliers) are counted and listed. A
    stored candle flagged ``confirmed_move`` broke a price rule and was confirmed by the
    reference venue (evidence in the catalog's ``candle_decisions``): its price rules are
    reported as the soft finding ``confirmed_move`` instead of failing the check.
    """
    rules = candle_expectation_rules_by_day([(day, candle_frame(t)) for day, t in tables],
                                            Timeframe.M1, thresholds, now_ms)
    outcomes = {}
    for day, table in tables:
        confirmed = _confirmed_rows(table)
        found = [(row, _waived(names) if row in confirmed else names)
                 for row, names in enumerate(rules[day]) if names or row in confirmed]
        hard = [(row, ",".join(n for n in names if n in HARD_RULES)) for row, names in found
                if HARD_RULES.intersection(names)]
        by_rule = Counter(name for _, names in found for name in names)
        outcomes[day] = CheckOutcome(not hard, {
            "rows_checked": table.num_rows,
            "hard_failures": len(hard),
            "soft_findings": len(found) - len(hard),
            "by_rule": ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items())) or "none",
            "first_failing_rows": _rows_text(table, hard) or _rows_text(
                table, [(row, ",".join(names)) for row, names in found]) or "none",
        })
    return outcomes


def _confirmed_rows(table: pa.Table) -> set[int]:
    """Rows of a stored table flagged ``confirmed_move``."""
    if ANOMALY_FLAGS not in table.column_names:
        return set()
    return {row for row, flags in enumerate(table.column(ANOMALY_FLAGS).to_pylist())
            if flags and CONFIRMED_MOVE in flags}


def _waived(names: tuple[str, ...]) -> tuple[str, ...]:
    """A confirmed candle's findings: its price rules become the soft ``confirmed_move``."""
    return (*(n for n in names if n not in PRICE_RULES), CONFIRMED_MOVE)


def gap_outcome(record: PartitionRecord | None) -> CheckOutcome:
    """Minutes the exchange never sent, from a 1m partition's catalog row."""
    if record is None:
        return CheckOutcome(False, {"error": "not in the catalog"})
    ranges = [f"{ms_to_datetime(a):%H:%M}-{ms_to_datetime(b):%H:%M}"
              for a, b in record.missing_ranges]
    return CheckOutcome(record.missing_minutes == 0, {
        "rows": record.rows,
        "quarantined": record.quarantined,
        "missing_minutes": record.missing_minutes,
        "accounted_minutes": record.rows + record.quarantined + record.missing_minutes,
        "missing_ranges": ", ".join(ranges[:SHOWN]) or "none",
    })


def consistency_outcome(reports: Mapping[Timeframe, ConsistencyReport]) -> CheckOutcome:
    """A day's derived candles vs the exchange's own candles, every timeframe compared.

    Passes when every timeframe is consistent. The metadata counts per timeframe
    (``compared_<tf>``, ``mismatches_<tf>``) and in total, and lists the first mismatches with
    their timeframe.
    """
    lost = {tf: set(report.lost_minutes) for tf, report in reports.items()}
    each = max(2, SHOWN // max(1, len(reports)))  # every failing timeframe gets its lines
    shown = [f"{tf.value} {ms_to_datetime(m.open_ms):%H:%M} {m.field}: ours {m.ours} vs "
             f"exchange {m.exchange}" + (" (lost a quarantined minute)"
                                         if m.open_ms in lost[tf] else "")
             for tf, report in reports.items() for m in report.mismatches[:each]]
    per_timeframe: dict[str, int] = {}
    for tf, report in reports.items():
        per_timeframe[f"compared_{tf.value}"] = report.compared
        per_timeframe[f"mismatches_{tf.value}"] = len(report.mismatches)
    return CheckOutcome(all(r.consistent for r in reports.values()), {
        "timeframes": ", ".join(tf.value for tf in reports) or "none",
        "compared": sum(r.compared for r in reports.values()),
        "mismatches": sum(len(r.mismatches) for r in reports.values()),
        "lost_to_quarantine": sum(len(minutes) for minutes in lost.values()),
        "only_ours": sum(len(r.only_ours) for r in reports.values()),
        "only_exchange": sum(len(r.only_exchange) for r in reports.values()),
        "first_mismatches": "\n".join(shown) or "none",
        **per_timeframe,
    })


def _rows_text(table: pa.Table, rows: Sequence[tuple[int, str]]) -> str:
    """``HH:MM what`` of the first offending rows (``-1``: about the whole partition)."""
    times = table.column("timestamp").cast(pa.int64()).to_pylist()
    shown = [f"{ms_to_datetime(times[row]):%H:%M} {what}" if 0 <= row < len(times) else what
             for row, what in list(dict.fromkeys(rows))[:SHOWN]]
    return "\n".join(shown)
