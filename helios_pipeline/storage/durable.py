"""Durable realtime writes: ticks are acknowledged once fsynced to the WAL, then sent to Redis.

:class:`DurableTickWriter` ties ``storage.wal`` to ``storage.hot``:

1. ``submit(ticks)`` assigns each tick its ``seq`` (``max(previous + 1, received_ts_us)`` per
   exchange, symbol and kind), appends the encoded ticks to the write-ahead log and returns (the
   ticks are *acknowledged*) only after their fsync. Group commit: one submitter at a time
   fsyncs for all that appended so far, the others wait for it; the leader waits up to
   ``commit_delay_s`` only while other submitters are still encoding, so a lone producer pays
   no delay and no thread hand-off.
2. A pusher thread sends acknowledged ticks to Redis, from memory or, after an outage or a
   restart, from the log. Every push is guarded (``storage.hot.Guard``) by the marker key
   ``helios:writer:{name}:position``: the log position Redis holds, moved in the same atomic
   script as the ticks. Marker missing (Redis restarted or flushed): replay all the log keeps
   (one hour). Marker elsewhere than expected (e.g. after a crash): continue from it. Stream ids
   come from ``seq`` and present ticks are skipped, so every replay is exactly-once.
3. While Redis is unreachable, acknowledging goes on into the log, ``health()`` reports it, and
   the pusher retries with backoff, catching up when Redis answers. Every
   ``checkpoint_interval_s`` the position Redis holds and the seq counters become the log's
   checkpoint, and old segments are deleted.

``recover()`` starts the writer: seq counters come from the checkpoint and the log after it,
then the pusher replays what Redis lacks. One writer per log and per (exchange, symbol, kind).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import redis

from helios_pipeline.storage.hot import Guard, HotEntry, HotStore, StreamKey, stream_key
from helios_pipeline.storage.ticks import Tick, TickError, encode_tick, peek_identity
from helios_pipeline.storage.wal import WalError, WriteAheadLog

log = logging.getLogger(__name__)

TickFilter = Callable[[Sequence[Tick]], Sequence[Tick]]
_Outcome = Literal["pushed", "failed", "rewound"]

MAX_BACKOFF_S = 0.5
PROBE_INTERVAL_S = 0.5


class WriterError(RuntimeError):
    """The writer cannot accept ticks (not started, closed, or its log failed)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Ticks acknowledged by one ``submit``: durable in the log, on their way to Redis.

    Attributes:
        first_position: Log position of the first tick (``last_position + 1`` if none).
        last_position: Log position of the last tick.
        seqs: The seq assigned to each acknowledged tick, in order.
        submitted: The acknowledged ticks as given (after the validation hook).
    """

    first_position: int
    last_position: int
    seqs: tuple[int, ...]
    submitted: tuple[Tick, ...]

    @property
    def ticks(self) -> list[Tick]:
        """The acknowledged ticks with their seqs."""
        return [t.with_seq(s) for t, s in zip(self.submitted, self.seqs, strict=True)]

    def __len__(self) -> int:
        """Number of acknowledged ticks."""
        return len(self.seqs)


@dataclass(slots=True)
class _Batch:
    first: int
    last: int
    entries: list[HotEntry]


class DurableTickWriter:
    """Acknowledge ticks once durable in the WAL; deliver them to Redis exactly once.

    Thread-safe: ``submit`` may be called from many threads (or through ``submit_async``).
    """

    def __init__(
        self,
        wal: WriteAheadLog,
        hot: HotStore,
        *,
        name: str = "default",
        commit_delay_s: float = 0.002,
        push_batch: int = 2000,
        max_buffered_ticks: int = 200_000,
        checkpoint_interval_s: float = 1.0,
        validate: TickFilter | None = None,
    ) -> None:
        """Wire the writer; :meth:`recover` starts it.

        Args:
            wal: The log (owned by the caller, who closes it after the writer).
            hot: The Redis hot tier.
            name: Names the Redis marker key; one name per log.
            commit_delay_s: Longest an fsync waits for submitters still encoding (group commit).
            push_batch: Most ticks per Redis script call (one call blocks Redis ~3 us a tick).
            max_buffered_ticks: Acknowledged ticks kept in memory for the pusher; beyond that
                the pusher reads them back from the log.
            checkpoint_interval_s: How often the position Redis holds is checkpointed.
            validate: Hook run on each submitted batch; returns the ticks to store (quarantine
                of the others is the hook's business). ``None`` stores everything.
        """
        self.wal, self.hot, self.name = wal, hot, name
        self.marker_key = f"helios:writer:{name}:position"
        self._commit_delay = commit_delay_s
        self._push_batch = push_batch
        self._max_buffered = max_buffered_ticks
        self._checkpoint_every = checkpoint_interval_s
        self._validate = validate
        self._cond = threading.Condition()
        self._append_lock = threading.Lock()
        self._stop = threading.Event()
        self._counters: dict[StreamKey, int] = {}
        self._batches: deque[_Batch] = deque()
        self._buffered = self._encoding = self._synced = self._pushed = 0
        self._marker = ""
        self._closing = self._started = False
        self._fatal: BaseException | None = None
        self._pusher: threading.Thread | None = None
        self._syncing = False
        self._reader: Iterator[tuple[int, bytes]] | None = None
        self._reader_next = 0
        self._last_checkpoint = time.monotonic()
        self._probe_wanted, self._probes = False, 0
        self._stats = {"acked": 0, "syncs": 0, "in_redis": 0, "skipped_present": 0, "expired": 0,
                       "rewinds": 0, "redis_errors": 0}
        self._redis_up = True
        self._down_since: float | None = None
        self._last_error: str | None = None

    def recover(self, floors: Mapping[StreamKey, int] | None = None) -> int:
        """Restore the seq counters and start the pusher thread.

        Args:
            floors: Seqs to stay above per stream (``HotStore.last_seqs``: Redis would skip a
                tick at or below its stream's last id as already present).

        Returns:
            How many logged ticks follow the checkpoint (Redis may lack them; the pusher replays
            them, skipping what Redis already has).

        Raises:
            WriterError: Already started.
            WalCorruptionError: The log after the checkpoint is corrupt.
        """
        if self._started:
            raise WriterError("recover() was already called; a writer is started once.")
        for text, seq in self.wal.checkpoint_state.items():
            exchange, symbol, kind = text.split("|")
            self._counters[(exchange, symbol, kind)] = seq
        after = self.wal.checkpoint_position
        pending = 0
        for _, payload in self.wal.records(after=after):
            exchange, symbol, kind, seq = peek_identity(payload)
            key = (exchange, symbol, kind)
            self._counters[key] = max(seq, self._counters.get(key, 0))
            pending += 1
        for key, seq in (floors or {}).items():
            self._counters[key] = max(seq, self._counters.get(key, 0))
        self._synced = self.wal.synced_position
        self._pushed, self._marker = after, str(after)
        self._started = True
        self._pusher = threading.Thread(target=self._push_loop, name=f"push-{self.name}",
                                        daemon=True)
        self._pusher.start()
        return pending

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop accepting ticks, sync, give Redis ``timeout_s`` to catch up, checkpoint, stop.

        Returns:
            Whether Redis had everything acknowledged when the writer stopped. What it lacks
            stays in the log for the next ``recover()``.
        """
        if self._pusher is None or self._closing:
            return self._pushed >= self._synced
        with self._cond:
            self._closing = True
            self._cond.wait_for(lambda: self._encoding == 0 and not self._syncing)
        with contextlib.suppress(WriterError):  # a failed log was reported to its submitters
            self._wait_synced(self.wal.last_position)
        caught_up = self.flush(timeout_s, probe=False)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._pusher.join()
        with contextlib.suppress(WalError, OSError):
            self._checkpoint()
        return caught_up

    def __enter__(self) -> DurableTickWriter:
        """Start (``recover()``) unless started, and close on exit."""
        if not self._started:
            self.recover()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the writer."""
        self.close()

    def submit(self, ticks: Sequence[Tick]) -> Ack:
        """Make ticks durable and return once they are (the acknowledgement).

        Args:
            ticks: Ticks without seq (any ``seq`` given is replaced).

        Raises:
            WriterError: The writer is not started, is closing, or its log failed.
            SymbolError: A tick's symbol is not a unified symbol (nothing is written).
            WalError: The log write failed (nothing of the batch is acknowledged).
        """
        if self._validate is not None:
            ticks = self._validate(ticks)
        kept = tuple(ticks)
        if not kept:
            position = self.wal.last_position
            return Ack(position + 1, position, (), ())
        with self._cond:
            self._check_accepting()
            self._encoding += 1
        try:
            with self._append_lock:
                records, seqs, entries = self._assign(kept)
                last = self.wal.append(records)
                self._queue(last - len(records) + 1, entries)
        finally:
            with self._cond:
                self._encoding -= 1
                self._cond.notify_all()
        self._wait_synced(last)
        return Ack(last - len(records) + 1, last, tuple(seqs), kept)

    async def submit_async(self, ticks: Sequence[Tick]) -> Ack:
        """:meth:`submit` from asyncio code (runs in a worker thread)."""
        return await asyncio.to_thread(self.submit, ticks)

    def _check_accepting(self) -> None:
        if not self._started or self._closing:
            raise WriterError(
                f"Writer {self.name!r} is {'closing' if self._closing else 'not started'}: "
                f"call recover() first and submit before close()."
            )
        if self._fatal is not None:
            raise WriterError(f"Writer {self.name!r} stopped: {self._fatal!r}. Reopen the log.")

    def _assign(self, ticks: Sequence[Tick]) -> tuple[list[bytes], list[int], list[HotEntry]]:
        """Seqs, log records and Redis entries of a batch (one pass: this is the hot path)."""
        counters = self._counters
        records: list[bytes] = []
        seqs: list[int] = []
        entries: list[HotEntry] = []
        for tick in ticks:
            key = (exchange, symbol, kind) = (tick.exchange, tick.symbol, tick.kind)
            previous = counters.get(key)
            if previous is None:
                stream_key(*key)  # validates the symbol before anything is written
                previous = 0
            seq = max(previous + 1, tick.received_ts_us)
            counters[key] = seq
            record = encode_tick(tick, seq)
            seqs.append(seq)
            records.append(record)
            entries.append((exchange, symbol, kind, seq, record))
        return records, seqs, entries

    def _queue(self, first: int, entries: list[HotEntry]) -> None:
        """Keep the batch in memory for the pusher, in chunks of ``push_batch``."""
        step = self._push_batch
        with self._cond:
            for start in range(0, len(entries), step):
                chunk = entries[start : start + step]
                self._batches.append(_Batch(first + start, first + start + len(chunk) - 1, chunk))
            self._buffered += len(entries)
            while self._buffered > self._max_buffered:
                self._buffered -= len(self._batches.popleft().entries)  # re-read from the log
            self._cond.notify_all()

    def _wait_synced(self, position: int) -> None:
        """Return once ``position`` is durable, fsyncing as the leader if nobody else is."""
        with self._cond:
            while self._synced < position:
                if self._fatal is not None:
                    raise WriterError(f"Not acknowledged: the log failed ({self._fatal!r}).")
                if not self._syncing:
                    self._syncing = True
                    break
                self._cond.wait()
            else:
                return
            # Group commit: submitters still encoding get up to commit_delay_s to join this sync.
            if self._encoding and self._commit_delay > 0:
                self._cond.wait_for(lambda: self._encoding == 0, timeout=self._commit_delay)
        try:
            target = self.wal.sync()
        except WalError as exc:
            log.exception("WAL sync failed; writer %s stops acknowledging", self.name)
            with self._cond:
                self._fatal, self._syncing = exc, False
                self._cond.notify_all()
            raise WriterError(f"Not acknowledged: the log failed ({exc!r}).") from exc
        with self._cond:
            self._stats["acked"] += max(0, target - self._synced)
            self._stats["syncs"] += 1
            self._synced, self._syncing = max(self._synced, target), False
            self._cond.notify_all()

    def _push_loop(self) -> None:
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
                self._pusher_failed(exc)
                return
            if outcome == "failed":
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            chunk, backoff = None, 0.01
            self._maybe_checkpoint()

    def _next_chunk(self) -> tuple[list[HotEntry], int] | None:
        """The next ticks Redis lacks, from memory if contiguous, else from the log."""
        with self._cond:
            pushed, synced = self._pushed, self._synced
            while self._batches and self._batches[0].last <= pushed:
                self._buffered -= len(self._batches.popleft().entries)
            if pushed >= synced:
                return None
            head = self._batches[0] if self._batches else None
            if head is not None and head.first == pushed + 1 and head.last <= synced:
                return head.entries, head.last
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
        with self._cond:
            self._pushed, self._marker = last, guard.new
            self._stats["in_redis"] += result.added
            self._stats["skipped_present"] += result.skipped
            self._stats["expired"] += result.expired
            if verifies_for_flush:  # the guard confirmed Redis holds what we think it does
                self._probe_wanted = False
                self._probes += 1
            self._cond.notify_all()
        return "pushed"

    def _rewind(self, marker: str) -> None:
        """Redis holds a different position than we thought: continue from what it has."""
        first = self.wal.first_position - 1
        position = int(marker) if marker.isdigit() else -1
        with self._cond:
            if not first <= position <= self._synced:
                position = first  # Redis lost it all (or holds another log's): replay what we keep
            # A fresh Redis (no marker, nothing expected) is routine; anything else is news.
            level = logging.INFO if self._marker in ("", "0") and not marker else logging.WARNING
            log.log(level, "Redis holds log position %r, writer %s expected %r; replaying from %d",
                    marker, self.name, self._marker, position)
            self._pushed, self._marker = position, marker
            self._stats["rewinds"] += 1
            self._reader = None
            self._cond.notify_all()

    def _idle(self) -> None:
        """Nothing to push: wait for work, probing Redis now and then to notice a wipe."""
        with self._cond:
            woke = self._cond.wait_for(
                lambda: self._pushed < self._synced or self._probe_wanted or self._stop.is_set(),
                timeout=PROBE_INTERVAL_S,
            )
            probe = (self._probe_wanted or not woke) and self._pushed >= self._synced
        if probe and not self._stop.is_set() and self._push([], self._pushed) == "failed":
            self._stop.wait(MAX_BACKOFF_S)
        self._maybe_checkpoint()

    def _redis_failed(self, exc: BaseException) -> None:
        with self._cond:
            if self._redis_up:
                log.warning("Redis unreachable for writer %s: %r; logging only", self.name, exc)
                self._redis_up, self._down_since = False, time.time()
            self._last_error = repr(exc)
            self._stats["redis_errors"] += 1

    def _redis_ok(self) -> None:
        if not self._redis_up:
            log.warning("Redis is back for writer %s; catching up", self.name)
            with self._cond:
                self._redis_up, self._down_since = True, None

    def _pusher_failed(self, exc: BaseException) -> None:
        log.exception("Pusher of writer %s stopped; ticks stay in the log", self.name)
        with self._cond:
            self._last_error = f"pusher stopped: {exc!r}"
            self._cond.notify_all()

    def _maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self._checkpoint_every:
            self._checkpoint()

    def _checkpoint(self) -> None:
        with self._append_lock:
            state = {"|".join(key): seq for key, seq in self._counters.items()}
        self.wal.checkpoint(self._pushed, state)
        self.wal.delete_old_segments()
        self._last_checkpoint = time.monotonic()

    def flush(self, timeout_s: float = 10.0, *, probe: bool = True) -> bool:
        """Wait until Redis holds everything acknowledged so far.

        Args:
            timeout_s: Give up after this long.
            probe: Ask Redis first whether it still holds what the writer thinks it does (so a
                wiped Redis is refilled before this returns).

        Returns:
            Whether Redis caught up in time.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._synced
            probes = self._probes
            self._probe_wanted = probe
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self._pushed >= target and (not probe or self._probes > probes),
                timeout=max(0.0, deadline - time.monotonic()),
            )

    def health(self) -> dict[str, object]:
        """Counters and state for monitoring.

        Keys: ``acked`` (ticks acknowledged by this process), ``syncs`` (the fsyncs that
        acknowledged them; fewer than submits when group commit merges), ``in_redis`` (ticks
        this process wrote to Redis, replays included), ``skipped_present`` (replayed ticks
        Redis already had), ``expired`` (logged ticks too old for the hot tier), ``pending``
        (acknowledged ticks Redis is not known to hold), ``buffered`` (of those, kept in
        memory), ``redis_up``, ``redis_down_since`` (epoch seconds or ``None``),
        ``last_error``, ``rewinds``, ``redis_errors``, ``wal_bytes``, ``wal_position``,
        ``redis_position``, ``checkpoint``.
        """
        with self._cond:
            snapshot: dict[str, object] = dict(self._stats)
            snapshot.update(
                pending=self._synced - self._pushed, buffered=self._buffered,
                redis_up=self._redis_up, redis_down_since=self._down_since,
                last_error=self._last_error, wal_position=self._synced,
                redis_position=self._pushed, checkpoint=self.wal.checkpoint_position,
            )
        snapshot["wal_bytes"] = self.wal.size_bytes()
        return snapshot
