"""``helios backfill``: check the exchange and symbols, then materialise days through Dagster."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from helios_pipeline.cli.common import (
    CliError,
    audit_settings,
    console,
    dagster_instance,
    parse_symbols,
)
from helios_pipeline.domain.timeframe import Timeframe, parse_day
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.settings import Settings
from helios_pipeline.storage.paths import market_data_root, metadata_path

if TYPE_CHECKING:
    from helios_pipeline.defs.backfill import PlannedRun


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios backfill``."""
    backfill = sub.add_parser("backfill", help="materialise ohlcv_1m for symbols and days")
    backfill.add_argument("--symbols", required=True, help="e.g. BTC/USDT,ETH/USDT")
    backfill.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    backfill.set_defaults(handler=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    symbols = parse_symbols(args.symbols)
    start, end = parse_day(args.start), parse_day(args.end)
    _check_range(start, end, parse_day(settings.start_date))
    audit_settings(settings, "helios backfill")
    audit = AuditLog(metadata_path(settings.data_dir))
    subject = f"{settings.exchange} {','.join(symbols)} {start}..{end}"
    audit.record("backfill", subject, command="helios backfill", phase="requested")
    preflight(settings, symbols)
    weight_before = rest_weight_spent(settings)
    failures = backfill_with_progress(settings, symbols, start, end)
    audit.record("backfill", subject, command="helios backfill", phase="finished",
                 failed_runs=failures)
    print_partitions(settings, symbols, start, end)
    print_sources(settings, symbols, start, end, rest_weight_spent(settings) - weight_before)
    return 1 if failures else 0


def rest_weight_spent(settings: Settings) -> int:
    """REST request weight this process has spent on the configured exchange so far.

    Every run of the backfill uses the process-wide limiter of the exchange
    (``exchanges.shared``), which counts each request's weight.
    """
    from helios_pipeline.exchanges.shared import shared_guards

    config = settings.exchange_config()
    return shared_guards(config.exchange_id, config.base_url,
                         config.max_in_flight).limiter.weight_spent


def print_sources(settings: Settings, symbols: Sequence[str], start: date, end: date,
                  weight: int) -> None:
    """``1m partitions: 365 from the bulk archive (https://...), 0 from REST; REST weight 78``."""
    from helios_pipeline.storage.metadata import MetadataStore

    catalog = MetadataStore(metadata_path(settings.data_dir))
    sources = [record.source for symbol in symbols for record in catalog.list_partitions(
        exchange=settings.exchange, symbol=symbol, timeframe=Timeframe.M1, start=start, end=end)]
    archived = sum(source.startswith("archive ") for source in sources)
    where = settings.bulk_archive_url() or "off: HELIOS_BULK_URL is empty or not applicable"
    console.print(f"1m partitions: {archived} from the bulk archive ({where}), "
                  f"{len(sources) - archived} from REST; REST weight spent: {weight}")


def _check_range(start: date, end: date, first_day: date) -> None:
    """Refuse a range the partitions cannot hold, before anything is fetched or written."""
    yesterday = datetime.now(tz=UTC).date() - timedelta(days=1)
    if end < start:
        raise CliError(f"--end {end} is before --start {start}: give the earlier day as --start.")
    if start < first_day:
        raise CliError(
            f"--start {start} is before HELIOS_START_DATE={first_day}, the first day of the "
            f"partitions: start at {first_day} or later, or set HELIOS_START_DATE earlier."
        )
    if end > yesterday:
        raise CliError(
            f"--end {end} has not closed yet: the last complete UTC day is {yesterday}."
        )


def preflight(settings: Settings, symbols: Sequence[str]) -> None:
    """Reach the exchange, store its markets and trading rules, and check every symbol."""
    from helios_pipeline.batch.markets import sync_markets
    from helios_pipeline.exchanges.client import ExchangeClient
    from helios_pipeline.exchanges.errors import ExchangeError
    from helios_pipeline.storage.metadata import MetadataStore

    async def run() -> None:
        async with ExchangeClient.from_config(settings.exchange_config(batch=True)) as client:
            await sync_markets(client, MetadataStore(metadata_path(settings.data_dir)), symbols)

    try:
        asyncio.run(run())
    except ExchangeError as exc:
        raise CliError(str(exc)) from None


def backfill_with_progress(
    settings: Settings, symbols: Sequence[str], start: date, end: date
) -> int:
    """Run the backfill through Dagster with a progress bar; returns the number of failed runs.

    One line per run (a symbol's month): ``BTC/USDT 2024-04-01..2024-04-02 (2 days) ok``.
    """
    from helios_pipeline.defs.backfill import plan_backfill, run_backfill

    total = len(plan_backfill(symbols, start, end))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    # Closed when done: an open instance outlives the command in a Python session (notebooks,
    # tests) and leaves Dagster's current-instance context pointing at a dead one.
    with dagster_instance() as instance, Progress(*columns, console=console) as progress:
        task = progress.add_task("backfill runs", total=total)

        def done(planned: PlannedRun, ok: bool) -> None:
            mark = "[green]ok[/]" if ok else "[red]failed[/]"
            progress.console.print(
                f"  {planned.symbol} {planned.days[0]}..{planned.days[-1]} "
                f"({len(planned.days)} days) {mark}"
            )
            progress.advance(task)

        outcome = run_backfill(symbols, start, end, instance, settings, on_run_done=done,
                               log_level="WARNING")
    for planned, error in outcome.failures:
        console.print(f"[red]{planned.symbol} {planned.days[0]}..{planned.days[-1]}:[/] {error}")
    return len(outcome.failures)


def print_partitions(settings: Settings, symbols: Sequence[str], start: date, end: date) -> None:
    """Table of the catalog rows for the given partitions."""
    from helios_pipeline.storage.metadata import MetadataStore

    table = Table(title=f"ohlcv_1m partitions (files under {settings.data_dir}/market_data)")
    for column in ("symbol", "day", "rows", "quarantined", "missing min", "version"):
        table.add_column(column)
    table.add_column("file", overflow="fold")
    catalog = MetadataStore(metadata_path(settings.data_dir))
    root = market_data_root(settings.data_dir)
    for symbol in symbols:
        for record in catalog.list_partitions(
            exchange=settings.exchange, symbol=symbol, timeframe=Timeframe.M1,
            start=start, end=end,
        ):
            table.add_row(symbol, str(record.day), str(record.rows), str(record.quarantined),
                          str(record.missing_minutes), str(record.version),
                          str(Path(record.path).relative_to(root)))
    console.print(table)
