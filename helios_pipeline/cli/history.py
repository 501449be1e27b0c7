"""``helios history SYMBOL DAY``: a partition's stored versions and what changed between them."""

from __future__ import annotations

import argparse
from datetime import date

from rich.table import Table

from helios_pipeline.cli.common import CliError, console
from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.query.history import TableDiff, diff_tables
from helios_pipeline.security.inputs import EXCHANGE_ID
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionRecord
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.versions import VersionNotKeptError

SHOWN_CHANGES = 20


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios history``."""
    history = sub.add_parser(
        "history", help="list a partition's stored versions and show what changed",
        description="List every stored version of one partition (symbol x day x timeframe) and "
                    "show what changed from the previous version, or between two versions.")
    history.add_argument("symbol", help="e.g. BTC/USDT")
    history.add_argument("day", type=_day, help="UTC day, YYYY-MM-DD")
    history.add_argument("--timeframe", default="1m", choices=[t.value for t in Timeframe])
    history.add_argument("--exchange", default=None,
                         help="venue (default HELIOS_EXCHANGE, the primary one)")
    history.add_argument("--diff", nargs=2, type=int, metavar=("OLD", "NEW"),
                         help="compare these two versions (default: the last two)")
    history.set_defaults(handler=_history)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day; use YYYY-MM-DD") from None


def _history(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    symbol, timeframe = normalize_symbol(args.symbol), Timeframe(args.timeframe)
    exchange = (args.exchange or settings.exchange).lower()
    if not EXCHANGE_ID.match(exchange):
        raise CliError(f"--exchange {args.exchange!r}: expected an exchange id of lowercase "
                       "letters, digits and _ (e.g. binance or okx).")
    catalog = MetadataStore(metadata_path(settings.data_dir))
    versions = catalog.partition_history(exchange, symbol, timeframe, args.day)
    if not versions:
        raise CliError(f"No stored versions of {symbol} {timeframe.value} {args.day} on "
                       f"{exchange} in {settings.data_dir}; backfill it first.")
    console.print(_versions_table(versions))
    pair = args.diff or ([versions[-2].version, versions[-1].version] if len(versions) > 1
                         else None)
    if pair is not None:
        store = CandleStore(settings.data_dir, keep_versions=settings.keep_versions)
        by_number = {v.version: v for v in versions}
        old, new = (_version(by_number, n) for n in pair)
        try:
            diff = diff_tables(store.load_version(old.path, old.content_hash),
                               store.load_version(new.path, new.content_hash))
        except VersionNotKeptError as exc:
            raise CliError(str(exc)) from None
        _print_diff(old.version, new.version, diff)
    return 0


def _version(by_number: dict[int, PartitionRecord], number: int) -> PartitionRecord:
    if number not in by_number:
        raise CliError(f"No version {number}; this partition has versions "
                       f"{', '.join(map(str, sorted(by_number)))}.")
    return by_number[number]


def _versions_table(versions: list[PartitionRecord]) -> Table:
    first = versions[0]
    table = Table(title=f"{first.symbol} {first.timeframe.value} {first.day} on {first.exchange}")
    for column in ("version", "written (UTC)", "rows", "quarantined", "missing", "hash",
                   "source"):
        table.add_column(column)
    for v in versions:
        table.add_row(str(v.version), f"{v.written_at:%Y-%m-%d %H:%M:%S}", str(v.rows),
                      str(v.quarantined), str(v.missing_minutes), v.content_hash[:12], v.source)
    return table


def _print_diff(old: int, new: int, diff: TableDiff) -> None:
    if diff.same:
        console.print(f"v{old} -> v{new}: the same candles (only the file bytes differ).")
        return
    console.print(f"v{old} -> v{new}: {len(diff.added)} candles added, {len(diff.removed)} "
                  f"removed, {len(diff.changed)} values changed")
    for moment in diff.added[:SHOWN_CHANGES]:
        console.print(f"  + {moment:%H:%M}")
    for moment in diff.removed[:SHOWN_CHANGES]:
        console.print(f"  - {moment:%H:%M}")
    for moment, column, before, after in diff.changed[:SHOWN_CHANGES]:
        console.print(f"  ~ {moment:%H:%M} {column}: {before} -> {after}")
