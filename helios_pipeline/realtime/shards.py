"""``helios stream --shards N``: one exchange's symbols streamed by N processes.

One Python process validates and durably writes about 90k ticks/s, and parses far fewer
websocket frames than that (ccxt is pure Python): past that, the GIL is the limit. A shard is a
whole stream service (:class:`~helios_pipeline.realtime.service.StreamService`: its own
websocket connections, write-ahead log, writer and health hash) for the symbols
:func:`shard_of` gives it, in its own process. :func:`run_shards` starts them and stops them
together.

Placement is by a hash of the symbol alone, so a symbol stays on its shard whatever else is
streamed. Changing N moves symbols, and a log written under the old layout could still hold
ticks Redis lacks: :func:`drain_other_logs` replays every log of the exchange outside the new
layout into Redis before the shards start, so a restart with another N loses nothing. It waits
for Redis as long as that takes, saying so every few seconds: starting the new layout first
would let its writers push higher stream ids, and Redis would later refuse the old logs' ticks
as already present.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from helios_pipeline.quality.alerts import redact_url
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.wal_files import WalError
from helios_pipeline.storage.hot.writer import DurableTickWriter

log = logging.getLogger(__name__)

# A shard that stops within this long of its start is misconfigured: restarting it would loop.
STARTUP_GRACE_S = 15.0


class ShardError(RuntimeError):
    """The shards cannot run; the message says which and what to do."""


def shard_of(symbol: str, shards: int) -> int:
    """The shard (from 1) that streams ``symbol`` when ``shards`` processes share the work."""
    return zlib.crc32(symbol.encode()) % shards + 1


def split_symbols(symbols: Sequence[str], shards: int) -> dict[int, tuple[str, ...]]:
    """Shard number -> its symbols, in the given order; shards left without symbols omitted."""
    if shards < 1:
        raise ShardError(f"--shards {shards}: give a number of processes, at least 1.")
    placed: dict[int, list[str]] = {}
    for symbol in symbols:
        placed.setdefault(shard_of(symbol, shards), []).append(symbol)
    return {index: tuple(placed[index]) for index in sorted(placed)}


@dataclass(frozen=True)
class Drained:
    """A log from another layout, replayed into Redis.

    Attributes:
        name: The writer (and log folder) name.
        pending: Logged ticks after its checkpoint (Redis may have held some already).
    """

    name: str
    pending: int

    def describe(self) -> str:
        """One line for the operator."""
        return (f"replayed log {self.name} of another shard layout: {self.pending} logged ticks "
                "after its checkpoint; Redis has them all")


def drain_other_logs(config: StreamConfig, keep: set[str], timeout_s: float = 10.0,
                     *, emit: Callable[[str], object]) -> list[Drained]:
    """Replay into Redis every log of ``config.exchange`` whose writer is not in ``keep``.

    Waits until Redis holds every logged tick, however long Redis is down, with a line to
    ``emit`` every ``timeout_s`` (Ctrl-C stops the wait; the logs are kept for the next start).

    Raises:
        ShardError: A log is locked (another ``helios stream`` of this exchange is running).
    """
    root = config.wal_folder.parent
    prefix = f"stream-{config.exchange}"
    names = sorted(p.name for p in root.glob(f"{prefix}*") if p.is_dir()) if root.exists() else []
    drained = []
    for name in names:
        if name in keep or not (name == prefix or name.startswith(f"{prefix}-")):
            continue
        drained.append(_drain(config, name, root / name, timeout_s, emit))
    return drained


def _drain(config: StreamConfig, name: str, folder: Path, timeout_s: float,
           emit: Callable[[str], object]) -> Drained:
    try:
        wal = WriteAheadLog(folder)
    except WalError as exc:
        raise ShardError(
            f"Cannot replay the log {folder} left by another shard layout: {exc}. Stop the "
            f"other `helios stream` of {config.exchange} first.") from exc
    hot = HotStore(config.redis_url, config.hot_retention_ms, exchange=config.exchange)
    try:
        writer = DurableTickWriter(wal, hot, name=name)
        pending = writer.recover()
        started = time.monotonic()
        try:
            while not writer.flush(timeout_s):  # asks Redis first: a restarted one is refilled
                emit(f"waiting for Redis ({redact_url(config.redis_url)}) to take the ticks of log "
                     f"{name} left by another shard layout, {time.monotonic() - started:.0f} s "
                     f"so far: streaming starts once it has them all (Ctrl-C stops; the log is "
                     f"kept). Last error: {writer.health().get('last_error') or 'none'}")
        finally:
            writer.close(timeout_s=1.0)
    finally:
        wal.close()
        hot.close()
    return Drained(name, pending)


ChildArgs = Callable[[int, tuple[str, ...]], list[str]]


def run_shards(config: StreamConfig, shards: int, child_args: ChildArgs,
               emit: Callable[[str], object]) -> int:
    """Run one ``helios stream`` process per shard until stopped; returns an exit code.

    SIGINT/SIGTERM stop every shard gracefully; a shard that ends with 0 (``--duration``) is
    done. A shard that fails right after starting stops them all (its error is in its output);
    one that fails later is restarted, since its log carries what it acknowledged. Shards watch
    this process (``--parent-pid``) and stop if it dies.

    Args:
        config: The service configuration; ``symbols`` are split across the shards.
        shards: Number of processes.
        child_args: ``helios`` arguments of shard ``i`` with its symbols (no program name).
        emit: Where progress lines go.
    """
    layout = split_symbols(config.symbols, shards)
    keep = {replace(config, writer_name="", shard=(i, shards)).writer_name for i in layout}
    for drained in drain_other_logs(config, keep, emit=emit):
        if drained.pending:
            emit(drained.describe())
    supervisor = _Supervisor(layout, shards, child_args, emit)
    previous = {s: signal.signal(s, supervisor.request_stop) for s in (signal.SIGINT,
                                                                         signal.SIGTERM)}
    try:
        return supervisor.run()
    finally:
        supervisor.stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Supervisor:
    """Starts, watches and stops the shard processes of :func:`run_shards`."""

    def __init__(self, layout: dict[int, tuple[str, ...]], shards: int, child_args: ChildArgs,
                 emit: Callable[[str], object]) -> None:
        self.layout, self.shards, self.child_args, self.emit = layout, shards, child_args, emit
        self.children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self.stopping = False

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def start(self, index: int) -> None:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "helios_pipeline.cli",
             *self.child_args(index, self.layout[index])])
        self.children[index] = (child, time.monotonic())

    def run(self) -> int:
        for index in self.layout:
            self.start(index)
        self.emit(f"{len(self.layout)} shards: " + "; ".join(
            f"{i}of{self.shards} pid {self.children[i][0].pid}, {len(self.layout[i])} symbols"
            for i in self.layout))
        while not self.stopping and self.children:
            time.sleep(0.2)
            for index, (child, started) in list(self.children.items()):
                code = child.poll()
                if code == 0:
                    del self.children[index]
                elif code is not None and time.monotonic() - started < STARTUP_GRACE_S:
                    self.emit(f"shard {index}of{self.shards} exited with {code} right after "
                              "starting; stopping all shards")
                    return code
                elif code is not None:
                    self.emit(f"shard {index}of{self.shards} exited with {code}; restarting it")
                    self.start(index)
        return 0

    def stop_all(self) -> None:
        for child, _ in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child, _ in self.children.values():
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()


def parent_alive(parent_pid: int) -> bool:
    """Whether the process that started this shard still runs (its children are re-parented)."""
    return os.getppid() == parent_pid
