"""Durable realtime writes: ticks are acknowledged once fsynced to the WAL, then sent to Redis.

:class:`DurableTickWriter` ties ``wal`` to ``store``:

1. ``submit(ticks)`` assigns each tick its ``seq`` (``max(previous + 1, received_ts_us)`` per
   exchange, symbol and kind), appends the encoded ticks to the write-ahead log and returns (the
   ticks are *acknowledged*) only after their fsync. Group commit: one submitter at a time
   fsyncs for all that appended so far, the others wait for it; the leader waits up to
   ``commit_delay_s`` only while other submitters are still encoding, so a lone producer pays
   no delay and no thread hand-off.
2. The acknowledged ticks go into the :class:`~.pusher.Backlog`, and a
   :class:`~.pusher.RedisPusher` thread delivers them to Redis exactly once, surviving Redis
   outages, wipes and restarts (see ``pusher``). While Redis is unreachable, acknowledging goes
   on into the log and ``health()`` reports it.

``recover()`` starts the writer: seq counters come from the checkpoint and the log after it,
then the pusher replays what Redis lacks. One writer per log and per (exchange, symbol, kind).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from helios_pipeline.domain.ticks import Tick
from helios_pipeline.storage.hot.codec import encode_tick, peek_identity
from helios_pipeline.storage.hot.keys import stream_key
from helios_pipeline.storage.hot.pusher import Backlog, RedisPusher
from helios_pipeline.storage.hot.store import HotEntry, HotStore, StreamKey
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.wal_files import WalError

log = logging.getLogger(__name__)


class WriterError(RuntimeError):
    """The writer cannot accept ticks (not started, closed, or its log failed)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Ticks acknowledged by one ``submit``: durable in the log, on their way to Redis.

    Attributes:
        first_position: Log position of the first tick (``last_position + 1`` if none).
        last_position: Log position of the last tick.
        seqs: The seq assigned to each acknowledged tick, in order.
        submitted: The acknowledged ticks as given.
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
        """
        self.wal, self.hot, self.name = wal, hot, name
        self._commit_delay = commit_delay_s
        self._backlog = Backlog(push_batch, max_buffered_ticks)
        self._cond = self._backlog.cond
        self._pusher = RedisPusher(wal, hot, name, self._backlog, push_batch=push_batch,
                                   checkpoint_interval_s=checkpoint_interval_s,
                                   seq_state=self._seq_state)
        self.marker_key = self._pusher.marker_key
        self._append_lock = threading.Lock()
        self._counters: dict[StreamKey, int] = {}
        self._encoding = 0
        self._closing = self._started = self._syncing = False
        self._fatal: BaseException | None = None
        self._stats = {"acked": 0, "syncs": 0}

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
        with self._cond:
            self._backlog.synced = self.wal.synced_position
        self._started = True
        self._pusher.start(after)
        return pending

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop accepting ticks, sync, give Redis ``timeout_s`` to catch up, checkpoint, stop.

        Returns:
            Whether Redis had everything acknowledged when the writer stopped. What it lacks
            stays in the log for the next ``recover()``.
        """
        if not self._started or self._closing:
            return self._backlog.pushed >= self._backlog.synced
        with self._cond:
            self._closing = True
            self._cond.wait_for(lambda: self._encoding == 0 and not self._syncing)
        with contextlib.suppress(WriterError):  # a failed log was reported to its submitters
            self._wait_synced(self.wal.last_position)
        caught_up = self.flush(timeout_s, probe=False)
        self._pusher.stop()
        with contextlib.suppress(WalError, OSError):
            self._pusher.checkpoint()
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
                self._backlog.add(last - len(records) + 1, entries)
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

    def _seq_state(self) -> dict[str, int]:
        """The seq counters as the checkpoint stores them."""
        with self._append_lock:
            return {"|".join(key): seq for key, seq in self._counters.items()}

    def _wait_synced(self, position: int) -> None:
        """Return once ``position`` is durable, fsyncing as the leader if nobody else is."""
        backlog = self._backlog
        with self._cond:
            while backlog.synced < position:
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
            self._stats["acked"] += max(0, target - backlog.synced)
            self._stats["syncs"] += 1
            backlog.synced, self._syncing = max(backlog.synced, target), False
            self._cond.notify_all()

    def flush(self, timeout_s: float = 10.0, *, probe: bool = True) -> bool:
        """Wait until Redis holds everything acknowledged so far.

        Args:
            timeout_s: Give up after this long.
            probe: Ask Redis first whether it still holds what the writer thinks it does (so a
                wiped Redis is refilled before this returns).

        Returns:
            Whether Redis caught up in time.
        """
        return self._pusher.flush(timeout_s, probe=probe)

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
        backlog, pusher = self._backlog, self._pusher
        with self._cond:
            snapshot: dict[str, object] = {**self._stats, **pusher.stats}
            snapshot.update(
                pending=backlog.synced - backlog.pushed, buffered=backlog.buffered,
                redis_up=pusher.redis_up, redis_down_since=pusher.down_since,
                last_error=pusher.last_error, wal_position=backlog.synced,
                redis_position=backlog.pushed, checkpoint=self.wal.checkpoint_position,
            )
        snapshot["wal_bytes"] = self.wal.size_bytes()
        return snapshot
