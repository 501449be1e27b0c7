"""Moving acknowledged ticks from the write-ahead log into Redis, exactly once.

Two pieces, shared with ``writer``:

* :class:`Backlog` is the hand-off between the writer and the pusher: the log position that is
  durable (the writer moves it), the position Redis holds (the pusher moves it), and the
  acknowledged batches still in memory. Its condition variable guards all of that.
* :class:`RedisPusher` is a thread that sends what Redis lacks, from memory when the next batch
  is there, else from the log (after an outage, a restart, or when memory overflowed). Every
  push is guarded (``store.Guard``) by the writer's marker key (``keys.marker_key``): the log
  position Redis holds, moved in the same atomic script as the ticks. Marker missing (Redis
  restarted or flushed): replay all the log keeps (one hour). Marker elsewhere than expected
  (e.g. after a crash): continue from it. Stream ids come from ``seq`` and present ticks are
  skipped, so every replay is exactly-once. While Redis is unreachable the pusher retries with
  backoff (up to :data:`MAX_BACKOFF_S`); when idle it probes Redis every
  :data:`PROBE_INTERVAL_S` so a wiped Redis is noticed and refilled. Every
  ``checkpoint_interval_s`` the position Redis holds (and the writer's seq counters) become the
  log's checkpoint, and old segments are deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import redis

from helios_pipeline.domain.ticks import TickError
from helios_pipeline.storage.hot.codec import peek_identity
from helios_pipeline.storage.hot.keys import marker_key
from helios_pipeline.storage.hot.store import Guard, HotEntry, HotStore
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.wal_files import WalError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 0.5
PROBE_INTERVAL_S = 0.5
_Outcome = Literal["pushed", "failed", "rewound"]


@dataclass(slots=True)
class _Batch:
    first: int
    last: int
    entries: list[HotEntry]


class Backlog:
    """Acknowledged ticks on their way to Redis (see the module docstring).

    Args:
        push_batch: Most ticks per Redis call; batches are kept in chunks of this size.
        max_buffered: Ticks kept in memory; beyond that the oldest chunks are dropped and the
            pusher reads them back from the log.
    """

    def __init__(self, push_batch: int, max_buffered: int) -> None:
        self.cond = threading.Condition()
        self.synced = 0  # durable in the log up to here (the writer moves it)
        self.pushed = 0  # Redis holds everything up to here (the pusher moves it)
        self.buffered = 0
        self._batches: deque[_Batch] = deque()
        self._push_batch = push_batch
        self._max_buffered = max_buffered

    def add(self, first: int, entries: list[HotEntry]) -> None:
        """Keep ticks logged at positions ``first...`` for the pusher, in chunks."""
        step = self._push_batch
        with self.cond:
            for start in range(0, len(entries), step):
                chunk = entries[start : start + step]
                self._batches.append(_Batch(first + start, first + start + len(chunk) - 1, chunk))
            self.buffered += len(entries)
            while self.buffered > self._max_buffered:
                self.buffered -= len(self._batches.popleft().entries)  # re-read from the log
            self.cond.notify_all()

    def next_in_memory(self) -> tuple[list[HotEntry], int] | None:
        """The next durable chunk Redis lacks if memory has it, else ``None``; hold ``cond``.

        Drops the chunks Redis already holds on the way.
        """
        while self._batches and self._batches[0].last <= self.pushed:
            self.buffered -= len(self._batches.popleft().entries)
        head = self._batches[0] if self._batches else None
        if head is not None and head.first == self.pushed + 1 and head.last <= self.synced:
            return head.entries, head.last
        return None


class RedisPusher:
    """The thread that delivers the backlog to Redis (see the module docstring).

    Args:
        wal: The writer's log.
        hot: The Redis hot tier.
        name: The writer's name (its marker key).
        backlog: Shared with the writer.
        push_batch: Most ticks per Redis call when reading the log.
        checkpoint_interval_s: How often the position Redis holds is checkpointed.
        seq_state: The writer's seq counters, saved with each checkpoint.
    """

    def __init__(
        self, wal: WriteAheadLog, hot: HotStore, name: str, backlog: Backlog, *,
        push_batch: int, checkpoint_interval_s: float, seq_state: Callable[[], Mapping[str, int]],
    ) -> None:
        self.wal, self.hot, self.name, self.backlog = wal, hot, name, backlog
        self.marker_key = marker_key(name)
        self._push_batch = push_batch
        self._checkpoint_every = checkpoint_interval_s
        self._seq_state = seq_state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._marker = ""
        self._reader: Iterator[tuple[int, bytes]] | None = None
        self._reader_next = 0
        self._last_checkpoint = time.monotonic()
        self._probe_wanted, self._probes = False, 0
        self.stats = {"in_redis": 0, "skipped_present": 0, "expired": 0, "rewinds": 0,
                      "redis_errors": 0}
        self.redis_up = True
        self.down_since: float | None = None
        self.last_error: str | None = None

    def start(self, after: int) -> None:
        """Start delivering everything logged after position ``after`` (the checkpoint)."""
        with self.backlog.cond:
            self.backlog.pushed, self._marker = after, str(after)
        self._thread = threading.Thread(target=self._loop, name=f"push-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (what Redis lacks stays in the log) and write a last checkpoint."""
        self._stop.set()
        with self.backlog.cond:
            self.backlog.cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def flush(self, timeout_s: float, *, probe: bool) -> bool:
        """Wait until Redis holds everything durable so far (see ``DurableTickWriter.flush``)."""
        deadline = time.monotonic() + timeout_s
        backlog = self.backlog
        with backlog.cond:
            target = backlog.synced
            probes = self._probes
            self._probe_wanted = probe
            backlog.cond.notify_all()
            return backlog.cond.wait_for(
                lambda: backlog.pushed >= target and (not probe or self._probes > probes),
                timeout=max(0.0, deadline - time.monotonic()),
            )

    def checkpoint(self) -> None:
        """Record in the log that Redis holds everything up to the pushed position."""
        self.wal.checkpoint(self.backlog.pushed, self._seq_state())
        self.wal.delete_old_segments()
        self._last_checkpoint = time.monotonic()

    def _loop(self) -> None:
        chunk: tuple[list[HotEntry], int] | None = None
        backoff = 0.01
        while not self._stop.is_set():
            try:
                if chunk is None:
                    chunk = self._next_chunk()
                if chunk is None:
                    self._idle()
                    continue
                outcome = self._push(*chunk)
            except (WalError, TickError) as exc:
                self._failed(exc)
                return
            if outcome == "failed":
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            chunk, backoff = None, 0.01
            self._maybe_checkpoint()

    def _next_chunk(self) -> tuple[list[HotEntry], int] | None:
        """The next ticks Redis lacks, from memory if contiguous, else from the log."""
        backlog = self.backlog
        with backlog.cond:
            in_memory = backlog.next_in_memory()
            pushed, synced = backlog.pushed, backlog.synced
            if pushed >= synced:
                return None
            if in_memory is not None:
                return in_memory
        return self._read_log(pushed, synced)

    def _read_log(self, pushed: int, synced: int) -> tuple[list[HotEntry], int] | None:
        if self._reader is None or self._reader_next != pushed + 1:
            self._reader = self.wal.records(after=pushed, until=synced)
        entries: list[HotEntry] = []
        last = pushed
        for position, payload in self._reader:
            entries.append((*peek_identity(payload), payload))
            last = position
            if len(entries) >= self._push_batch:
                break
        else:
            self._reader = None
        self._reader_next = last + 1
        return (entries, last) if entries else None

    def _push(self, entries: list[HotEntry], last: int) -> _Outcome:
        guard = Guard(self.marker_key, self._marker, str(last))
        verifies_for_flush = self._probe_wanted
        try:
            result = self.hot.push(entries, guard)
        except (redis.RedisError, OSError) as exc:
            self._redis_failed(exc)
            return "failed"
        self._redis_ok()
        if result.guard_value is not None:
            self._rewind(result.guard_value)
            return "rewound"
        with self.backlog.cond:
            self.backlog.pushed, self._marker = last, guard.new
            self.stats["in_redis"] += result.added
            self.stats["skipped_present"] += result.skipped
            self.stats["expired"] += result.expired
            if verifies_for_flush:  # the guard confirmed Redis holds what we think it does
                self._probe_wanted = False
                self._probes += 1
            self.backlog.cond.notify_all()
        return "pushed"

    def _rewind(self, marker: str) -> None:
        """Redis holds a different position than we thought: continue from what it has."""
        first = self.wal.first_position - 1
        position = int(marker) if marker.isdigit() else -1
        with self.backlog.cond:
            if not first <= position <= self.backlog.synced:
                position = first  # Redis lost it all (or holds another log's): replay what we keep
            # A fresh Redis (no marker, nothing expected) is routine; anything else is news.
            level = logging.INFO if self._marker in ("", "0") and not marker else logging.WARNING
            log.log(level, "Redis holds log position %r, writer %s expected %r; replaying from %d",
                    marker, self.name, self._marker, position)
            self.backlog.pushed, self._marker = position, marker
            self.stats["rewinds"] += 1
            self._reader = None
            self.backlog.cond.notify_all()

    def _idle(self) -> None:
        """Nothing to push: wait for work, probing Redis now and then to notice a wipe."""
        backlog = self.backlog
        with backlog.cond:
            woke = backlog.cond.wait_for(
                lambda: backlog.pushed < backlog.synced or self._probe_wanted
                or self._stop.is_set(),
                timeout=PROBE_INTERVAL_S,
            )
            probe = (self._probe_wanted or not woke) and backlog.pushed >= backlog.synced
            pushed = backlog.pushed
        if probe and not self._stop.is_set() and self._push([], pushed) == "failed":
            self._stop.wait(MAX_BACKOFF_S)
        self._maybe_checkpoint()

    def _redis_failed(self, exc: BaseException) -> None:
        with self.backlog.cond:
            if self.redis_up:
                log.warning("Redis unreachable for writer %s: %r; logging only", self.name, exc)
                self.redis_up, self.down_since = False, time.time()
            self.last_error = repr(exc)
            self.stats["redis_errors"] += 1

    def _redis_ok(self) -> None:
        if not self.redis_up:
            log.warning("Redis is back for writer %s; catching up", self.name)
            with self.backlog.cond:
                self.redis_up, self.down_since = True, None

    def _failed(self, exc: BaseException) -> None:
        log.exception("Pusher of writer %s stopped; ticks stay in the log", self.name)
        with self.backlog.cond:
            self.last_error = f"pusher stopped: {exc!r}"
            self.backlog.cond.notify_all()

    def _maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self._checkpoint_every:
            self.checkpoint()
