"""Backfills from Python and the CLI: plan runs by the asset's backfill policy, execute them.

Each planned run covers one symbol and at most ``MAX_PARTITIONS_PER_RUN`` consecutive days, the
same grouping Dagster's backfill daemon uses for the policy, so a month of one symbol is one run.
Runs execute in this process against the given instance and show up in the Dagster UI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from helios_pipeline.defs.assets import MAX_PARTITIONS_PER_RUN
from helios_pipeline.defs.build import (
    DIVERGENCE_JOB,
    OHLCV_1M_JOB,
    QUALITY_REPORT_JOB,
    build_defs,
)
from helios_pipeline.defs.partitions import SymbolDay, register_symbols
from helios_pipeline.domain.timeframe import days_between
from helios_pipeline.settings import Settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_TAG = "helios/backfill"
# For code outside defs/ (the CLI) that passes an instance along without importing dagster.
Instance = dg.DagsterInstance


@dataclass(frozen=True)
class PlannedRun:
    """One run of a backfill: one symbol, consecutive days."""

    symbol: str
    days: tuple[date, ...]

    def tags(self, backfill_id: str) -> dict[str, str]:
        """Run tags that make Dagster execute exactly these partitions."""
        if len(self.days) == 1:
            return {BACKFILL_TAG: backfill_id}  # a single partition goes by partition_key
        return {
            RANGE_START_TAG: str(SymbolDay(self.symbol, self.days[0]).key),
            RANGE_END_TAG: str(SymbolDay(self.symbol, self.days[-1]).key),
            BACKFILL_TAG: backfill_id,
        }


@dataclass
class BackfillOutcome:
    """What a backfill did: the runs, and which of them failed with what error."""

    runs: list[tuple[PlannedRun, str]] = field(default_factory=list)
    failures: list[tuple[PlannedRun, str]] = field(default_factory=list)

    def record(self, planned: PlannedRun, result: dg.ExecuteInProcessResult) -> None:
        """Add a finished run (and its first error, if it failed)."""
        self.runs.append((planned, result.run_id))
        if not result.success:
            self.failures.append((planned, _first_error(result)))

    @property
    def success(self) -> bool:
        """True when every run succeeded."""
        return not self.failures


def plan_backfill(
    symbols: Sequence[str], start: date, end: date, max_per_run: int = MAX_PARTITIONS_PER_RUN
) -> list[PlannedRun]:
    """Split symbols x days into runs of at most ``max_per_run`` consecutive days per symbol."""
    days = days_between(start, end)
    chunks = [tuple(days[i : i + max_per_run]) for i in range(0, len(days), max_per_run)]
    return [PlannedRun(symbol, chunk) for symbol in symbols for chunk in chunks]


def run_backfill(
    symbols: Sequence[str],
    start: date,
    end: date,
    instance: dg.DagsterInstance,
    settings: Settings | None = None,
    on_run_done: Callable[[PlannedRun, bool], None] | None = None,
    log_level: str = "INFO",
) -> BackfillOutcome:
    """Materialise ``ohlcv_1m`` for ``symbols`` from ``start`` to ``end`` (inclusive).

    Args:
        symbols: ccxt unified symbols.
        start: First day.
        end: Last day (must have closed).
        instance: Dagster instance the runs are recorded in.
        settings: Platform settings (default: from the environment).
        on_run_done: Called after each run with the planned run and whether it succeeded.
        log_level: Level of the runs' console log (the CLI passes WARNING to keep its progress
            bar readable; every event is still in the instance).
    """
    defs = build_defs(settings)
    job = defs.resolve_job_def(OHLCV_1M_JOB)
    register_symbols(instance, symbols)
    backfill_id = uuid.uuid4().hex[:8]
    outcome = BackfillOutcome()
    for planned in plan_backfill(symbols, start, end):
        result = _execute(job, instance, planned, backfill_id, log_level)
        outcome.record(planned, result)
        if on_run_done is not None:
            on_run_done(planned, result.success)
    return outcome


def run_followups(
    symbols: Sequence[str],
    start: date,
    end: date,
    instance: dg.DagsterInstance,
    settings: Settings | None = None,
    log_level: str = "INFO",
) -> BackfillOutcome:
    """Materialise what follows stored candles: cross-exchange divergence and daily reports.

    In a running deployment the automation condition and schedules do this; research code, the
    demo and tests call it right after :func:`run_backfill`.
    """
    settings = settings or Settings.from_env()
    defs = build_defs(settings)
    backfill_id = uuid.uuid4().hex[:8]
    outcome = BackfillOutcome()
    if settings.reference_exchange is not None:
        divergence = defs.resolve_job_def(DIVERGENCE_JOB)
        for planned in plan_backfill(symbols, start, end):
            outcome.record(planned, _execute(divergence, instance, planned, backfill_id, log_level))
    report = defs.resolve_job_def(QUALITY_REPORT_JOB)
    for day in days_between(start, end):
        result = report.execute_in_process(
            instance=instance, partition_key=day.isoformat(), raise_on_error=False,
            run_config=_log_config(log_level), tags={BACKFILL_TAG: backfill_id},
        )
        outcome.record(PlannedRun("*", (day,)), result)
    return outcome


def _execute(
    job: dg.JobDefinition, instance: dg.DagsterInstance, planned: PlannedRun, backfill_id: str,
    log_level: str,
) -> dg.ExecuteInProcessResult:
    single = len(planned.days) == 1
    return job.execute_in_process(
        instance=instance,
        partition_key=str(SymbolDay(planned.symbol, planned.days[0]).key) if single else None,
        tags=planned.tags(backfill_id),
        run_config=_log_config(log_level),
        raise_on_error=False,
    )


def _log_config(log_level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def project_instance(root: Path) -> Instance:
    """The project's persistent instance: ``DAGSTER_HOME``, defaulting to the project ``root``."""
    os.environ.setdefault("DAGSTER_HOME", str(root))
    return dg.DagsterInstance.get()


def _first_error(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            cause = error.cause.message if error.cause is not None else error.message
            return cause.strip()
    return "run failed (see the run's logs in the Dagster UI)"
