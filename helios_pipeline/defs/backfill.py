"""Backfills from Python and the CLI: one run of ``ohlcv_backfill_job`` per symbol and month.

Each run covers up to a month of one symbol (the grouping Dagster's backfill daemon uses for a
UI backfill under the candle assets' policy) and reports a materialisation and check results
for every partition, each naming its partition (``defs.history``). Runs execute one after the
other in this process against the given instance, and show up in the Dagster UI; Dagster's
in-process execution is not thread-safe (two runs in threads deadlock in its logging set-up).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from helios_pipeline.defs.assets import MAX_PARTITIONS_PER_RUN
from helios_pipeline.defs.build import DIVERGENCE_JOB, QUALITY_REPORT_JOB, build_defs
from helios_pipeline.defs.history import BACKFILL_JOB
from helios_pipeline.defs.partitions import SymbolDay, register_symbols
from helios_pipeline.domain.timeframe import days_between
from helios_pipeline.settings import Settings

# For code outside defs/ (the CLI) that passes an instance along without importing dagster.
Instance = dg.DagsterInstance


@dataclass
class BackfillOutcome:
    """What a backfill did: each partition's run, and which of them failed with what error."""

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


@dataclass(frozen=True)
class PlannedRun:
    """One run of a backfill: one symbol, consecutive days."""

    symbol: str
    days: tuple[date, ...]

    def run_config(self) -> dict[str, object]:
        """The run config of ``ohlcv_backfill_job`` for these days."""
        config = {"symbol": self.symbol, "start": self.days[0].isoformat(),
                  "end": self.days[-1].isoformat()}
        return {"ops": {"backfill_candles": {"config": config}}}

    def partitions(self) -> list[SymbolDay]:
        """The partitions the run covers."""
        return [SymbolDay(self.symbol, day) for day in self.days]


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
    """Materialise ``ohlcv_1m`` (and what the job derives) for ``symbols`` and days.

    Args:
        symbols: ccxt unified symbols.
        start: First day.
        end: Last day (must have closed).
        instance: Dagster instance the runs are recorded in.
        settings: Platform settings (default: from the environment).
        on_run_done: Called after each run with what it covered and whether it succeeded.
        log_level: Level of the runs' console log (the CLI passes WARNING to keep its progress
            bar readable; every event is still in the instance).

    On PostgreSQL, ``instance`` keeps a pool of one connection per storage from here on (see
    ``DagsterInstance.optimize_for_webserver``) instead of connecting once per event.
    """
    job = build_defs(settings).resolve_job_def(BACKFILL_JOB)
    # A backfill writes some 10 events per partition. On PostgreSQL, Dagster's storages open a
    # new connection per event unless asked to hold a pool, as its webserver does: that halves
    # a backfill's time (docs/batch.md). SQLite storages ignore it.
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    register_symbols(instance, symbols)
    outcome = BackfillOutcome()
    for planned in plan_backfill(symbols, start, end):
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        run_config={**planned.run_config(),
                                                    **_log_config(log_level)})
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
    outcome = BackfillOutcome()
    if settings.reference_exchange is not None:
        divergence = defs.resolve_job_def(DIVERGENCE_JOB)
        for partition in [p for run in plan_backfill(symbols, start, end)
                          for p in run.partitions()]:
            result = divergence.execute_in_process(
                instance=instance, partition_key=str(partition.key), raise_on_error=False,
                run_config=_log_config(log_level),
            )
            outcome.record(PlannedRun(partition.symbol, (partition.day,)), result)
    report = defs.resolve_job_def(QUALITY_REPORT_JOB)
    for day in days_between(start, end):
        result = report.execute_in_process(
            instance=instance, partition_key=day.isoformat(), raise_on_error=False,
            run_config=_log_config(log_level),
        )
        outcome.record(PlannedRun("*", (day,)), result)
    return outcome


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
