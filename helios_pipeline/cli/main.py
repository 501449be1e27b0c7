"""The ``helios`` command: demo, simulated exchange, backfills and the Dagster UI."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from helios_pipeline.domain.symbols import SymbolError, normalize_symbol
from helios_pipeline.domain.timeframe import Timeframe, parse_day
from helios_pipeline.settings import Settings, SettingsError
from helios_pipeline.storage.paths import market_data_root, metadata_path

if TYPE_CHECKING:
    from helios_pipeline.defs.backfill import Instance

console = Console()
DEMO_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
DEMO_DAYS = 3


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``helios`` command."""
    args = _parser().parse_args(argv)
    # Dagster flags backfill policies as beta on every import; not news for a CLI user.
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    try:
        return int(args.handler(args))
    except (CliError, SettingsError, SymbolError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helios", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulated exchange -> ccxt -> Dagster -> files, offline")
    demo.add_argument("--symbols", default=",".join(DEMO_SYMBOLS))
    demo.add_argument("--days", type=int, default=DEMO_DAYS, help="closed days to backfill")
    demo.set_defaults(handler=_demo)

    sim = sub.add_parser("sim-exchange", help="run the simulated Binance exchange")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--data", type=Path, help="folder of Binance kline CSVs to replay")
    sim.add_argument("--faults", default="", help="fault spec, e.g. 'http429:rate=0.1'")
    sim.add_argument("--venue", choices=("binance", "okx"), default="binance",
                     help="wire format to speak (okx: a second venue for cross-exchange checks)")
    sim.set_defaults(handler=_sim_exchange)

    backfill = sub.add_parser("backfill", help="materialise ohlcv_1m for symbols and days")
    backfill.add_argument("--symbols", required=True, help="e.g. BTC/USDT,ETH/USDT")
    backfill.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    backfill.set_defaults(handler=_backfill)

    ui = sub.add_parser("ui", help="open the Dagster UI (dagster dev)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)
    _add_stream_parser(sub)
    return parser


def project_root() -> Path:
    """The folder with ``dagster.yaml`` and ``workspace.yaml``: the current one."""
    root = Path.cwd()
    if not (root / "dagster.yaml").exists():
        raise CliError(
            f"No dagster.yaml in {root}: run helios from the project root (the folder with "
            "dagster.yaml and workspace.yaml)."
        )
    return root


def dagster_instance() -> Instance:
    """The project's persistent Dagster instance (``DAGSTER_HOME``, default the project root)."""
    from helios_pipeline.defs.backfill import project_instance

    return project_instance(project_root())


def parse_symbols(text: str) -> list[str]:
    """Comma-separated symbols in either form, as unified symbols."""
    symbols = [normalize_symbol(s) for s in text.split(",") if s.strip()]
    if not symbols:
        raise CliError("No symbols given: use e.g. --symbols BTC/USDT,ETH/USDT")
    return symbols


def _sim_exchange(args: argparse.Namespace) -> int:
    from helios_pipeline.sim.server import serve_forever

    url = f"http://127.0.0.1:{args.port}"
    console.print(f"Simulated {args.venue} exchange on {url} (Ctrl-C stops it)")
    if args.venue == "binance":
        console.print(f"  point Helios at it: HELIOS_EXCHANGE_URL={url} (websockets: {url}/ws)")
    else:
        console.print(f"  use it as the second venue: HELIOS_REFERENCE_EXCHANGE=okx "
                      f"HELIOS_REFERENCE_EXCHANGE_URL={url}")
    serve_forever(port=args.port, data_dir=args.data, faults=args.faults, venue=args.venue)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    symbols = parse_symbols(args.symbols)
    start, end = parse_day(args.start), parse_day(args.end)
    _check_range(start, end)
    preflight(settings, symbols)
    failures = backfill_with_progress(settings, symbols, start, end)
    print_partitions(settings, symbols, start, end)
    return 1 if failures else 0


def _check_range(start: date, end: date) -> None:
    yesterday = datetime.now(tz=UTC).date() - timedelta(days=1)
    if end < start:
        raise CliError(f"--end {end} is before --start {start}.")
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
        async with ExchangeClient.from_config(settings.exchange_config()) as client:
            await sync_markets(client, MetadataStore(metadata_path(settings.data_dir)), symbols)

    try:
        asyncio.run(run())
    except ExchangeError as exc:
        raise CliError(str(exc)) from None


def backfill_with_progress(
    settings: Settings, symbols: Sequence[str], start: date, end: date
) -> int:
    """Run the backfill through Dagster with a progress bar; returns the number of failed runs."""
    from helios_pipeline.defs.backfill import PlannedRun, plan_backfill, run_backfill

    instance = dagster_instance()
    total = len(plan_backfill(symbols, start, end))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("backfill runs", total=total)

        def done(planned: PlannedRun, ok: bool) -> None:
            mark = "[green]ok[/]" if ok else "[red]failed[/]"
            progress.console.print(
                f"  {planned.symbol} {planned.days[0]}..{planned.days[-1]} "
                f"({len(planned.days)} days) {mark}"
            )
            progress.advance(task)

        outcome = run_backfill(
            symbols, start, end, instance, settings,
            on_run_done=done, log_level="WARNING",
        )
    for planned, error in outcome.failures:
        console.print(f"[red]{planned.symbol} {planned.days[0]}..{planned.days[-1]}:[/] {error}")
    return len(outcome.failures)


def print_partitions(settings: Settings, symbols: Sequence[str], start: date, end: date) -> None:
    """Table of the catalog rows for the given partitions."""
    from helios_pipeline.storage.metadata import MetadataStore

    table = Table(title=f"ohlcv_1m partitions (files under {settings.data_dir}/market_data)")
    for column in ("symbol", "day", "rows", "missing min", "version"):
        table.add_column(column)
    table.add_column("file", overflow="fold")
    catalog = MetadataStore(metadata_path(settings.data_dir))
    root = market_data_root(settings.data_dir)
    for symbol in symbols:
        for record in catalog.list_partitions(
            exchange=settings.exchange, symbol=symbol, timeframe=Timeframe.M1,
            start=start, end=end,
        ):
            table.add_row(symbol, str(record.day), str(record.rows),
                          str(record.missing_minutes), str(record.version),
                          str(Path(record.path).relative_to(root)))
    console.print(table)


def _demo(args: argparse.Namespace) -> int:
    from helios_pipeline.cli.demo import run_demo

    return run_demo(parse_symbols(args.symbols), args.days)


def _ui(args: argparse.Namespace) -> int:
    root = project_root()
    env = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(root))}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(root / "workspace.yaml"),
               "-p", str(args.port)]
    console.print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)")
    return subprocess.call(command, env=env, cwd=root)  # noqa: S603


def _add_stream_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stream = sub.add_parser("stream", help="stream validated live ticks into Redis (ccxt.pro)")
    which = stream.add_mutually_exclusive_group()
    which.add_argument("--symbols", help="e.g. BTC/USDT,ETH/USDT (default: HELIOS_SYMBOLS)")
    which.add_argument("--top", type=int, metavar="N",
                       help="the N USDT spot symbols with the most 24 h quote volume")
    stream.add_argument("--duration", type=float, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C or SIGTERM)")
    stream.add_argument("--kinds", help="tick kinds: trade, book (best bid/ask), ticker (24 h "
                                        "ticker); default: HELIOS_STREAM_KINDS, else all three")
    stream.add_argument("--queue-size", type=int,
                        help="ticks queued before shedding, book/ticker first (default: "
                             "HELIOS_STREAM_QUEUE_SIZE, else 50000)")
    stream.add_argument("--status-every", type=float, default=5.0, metavar="S",
                        help="print a status line every S seconds")
    stream.add_argument("--shards", type=int, metavar="N",
                        help="split the symbols over N processes (default: HELIOS_STREAM_SHARDS, "
                             "else 1); one validates and writes about 90k ticks/s")
    stream.add_argument("--shard", help=argparse.SUPPRESS)  # I/N: set by --shards for a child
    stream.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    stream.add_argument("--ack-log", type=Path, metavar="FILE",
                        help="append 'symbol kind seq' of every acknowledged tick (fsynced)")
    stream.set_defaults(handler=_stream)


def _stream(args: argparse.Namespace) -> int:
    """``helios stream``: run the stream service in the foreground with a status line."""
    import logging

    from helios_pipeline.realtime.config import StreamConfig
    from helios_pipeline.realtime.runner import run_with_status, top_symbols
    from helios_pipeline.realtime.service import StreamServiceError
    from helios_pipeline.realtime.shards import ShardError, drain_other_logs, run_shards

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    overrides = _stream_overrides(args)
    shards = settings.stream_shards if args.shards is None else args.shards
    if shards < 1:
        raise CliError(f"--shards {shards}: give a number of processes, at least 1.")
    try:
        if args.top is not None:
            symbols = asyncio.run(top_symbols(settings.exchange, settings.exchange_url, args.top))
        else:
            symbols = parse_symbols(args.symbols) if args.symbols else list(settings.symbols)
        config = StreamConfig.from_settings(settings, symbols, **overrides)
        if args.shard is not None:  # one shard of `--shards N`, started by the command below
            asyncio.run(run_with_status(config, args.duration, args.status_every, print,
                                        parent_pid=args.parent_pid))
            return 0
        console.print(f"Streaming {len(symbols)} symbols ({','.join(config.kinds)}) from "
                      f"{settings.exchange_url or settings.exchange} into {settings.redis_url}"
                      f"{f' with {shards} processes' if shards > 1 else ''}; Ctrl-C stops.")
        if shards > 1:
            return run_shards(config, shards, lambda i, mine: _shard_args(args, i, shards, mine),
                              print)
        for drained in drain_other_logs(config, keep={config.writer_name}):
            if drained.pending or not drained.caught_up:
                print(drained.describe())
        asyncio.run(run_with_status(config, args.duration, args.status_every, print))
    except (StreamServiceError, ShardError) as exc:
        raise CliError(str(exc)) from None
    return 0


def _stream_overrides(args: argparse.Namespace) -> dict[str, object]:
    """``StreamConfig`` fields the command line sets (the rest come from ``HELIOS_*``)."""
    overrides: dict[str, object] = {"ack_log": args.ack_log}
    if args.kinds is not None:
        overrides["kinds"] = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if args.queue_size is not None:
        overrides["queue_size"] = args.queue_size
    if args.shard is not None:
        overrides["shard"] = _shard(args.shard)
    return overrides


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise CliError(f"--shard {text!r}: expected I/N, e.g. 2/4.")
    return int(index), int(count)


def _shard_args(args: argparse.Namespace, index: int, shards: int, symbols: tuple[str, ...]
                ) -> list[str]:
    """The ``helios stream`` arguments of one shard: its symbols plus the shared options."""
    child = ["stream", "--symbols", ",".join(symbols), "--shard", f"{index}/{shards}",
             "--parent-pid", str(os.getpid()), "--status-every", str(args.status_every)]
    for flag, value in (("--kinds", args.kinds), ("--queue-size", args.queue_size),
                        ("--duration", args.duration), ("--ack-log", args.ack_log)):
        if value is not None:
            child += [flag, str(value)]
    return child


if __name__ == "__main__":
    sys.exit(main())
