"""``helios stream``: validated live ticks into Redis, in one process or split over shards."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from helios_pipeline.cli.common import (
    CliError,
    audit_settings,
    console,
    parse_symbols,
    positive_float,
    positive_int,
)
from helios_pipeline.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios stream``."""
    stream = sub.add_parser("stream", help="stream validated live ticks into Redis (ccxt.pro)")
    which = stream.add_mutually_exclusive_group()
    which.add_argument("--symbols", help="e.g. BTC/USDT,ETH/USDT (default: HELIOS_SYMBOLS)")
    which.add_argument("--top", type=positive_int, metavar="N",
                       help="the N USDT spot symbols with the most 24 h quote volume")
    stream.add_argument("--duration", type=positive_float, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C or SIGTERM)")
    stream.add_argument("--kinds", help="tick kinds: trade, book (best bid/ask), ticker (24 h "
                                        "ticker); default: HELIOS_STREAM_KINDS, else all three")
    stream.add_argument("--queue-size", type=int,
                        help="ticks queued before shedding, book/ticker first (default: "
                             "HELIOS_STREAM_QUEUE_SIZE, else 50000)")
    stream.add_argument("--status-every", type=positive_float, default=5.0, metavar="S",
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
        if args.shard is None:  # the parent records it once for all shards
            audit_settings(settings, "helios stream")
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
        for drained in drain_other_logs(config, keep={config.writer_name}, emit=print):
            if drained.pending:
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
