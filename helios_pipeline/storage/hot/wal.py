"""Write-ahead log: append-only, checksummed record segments with group commit and checkpoints.

:class:`WriteAheadLog` owns one folder::

    {folder}/wal-00000000000000000001.log     segment; the name is its first record's position
    {folder}/wal-00000000000000052001.log     ... started when the previous one grew too big/old
    {folder}/checkpoint.json                  {"position": N, "state": {...}}, written atomically
    {folder}/LOCK                             flock held by the one process that writes the log

A record is opaque bytes framed as ``u32 length | u32 crc32(payload) | payload`` (little endian,
see ``wal_files``); its *position* counts records over the whole log from 1 (0 = before the
first). ``append(batch)`` writes a batch with one ``write`` and returns its last position; only
after ``sync()`` (fsync) is it durable, so callers acknowledge after ``sync()``, one sync for many
batches (group commit).

Crash safety (``helios_pipeline_tests/unit/test_wal.py``): a torn tail (the last record of the
last segment cut short, half-written or zero-filled by a crash) fails its length or CRC check and
is truncated on open; it was never acknowledged. Any other bad record (one followed by good data,
or in an older segment) raises :class:`WalCorruptionError` naming file, byte offset and position;
``repair=True`` truncates the last segment at it instead (losing what follows).

``checkpoint(position, state)`` atomically records what a consumer (the Redis hot tier) holds.
``delete_old_segments`` removes segments wholly at or before the checkpoint *and* last written
over ``retention_s`` ago (one hour: the hot tier's retention, so a wiped Redis can be refilled).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from helios_pipeline.storage.atomic import fsync_dir, write_atomic
from helios_pipeline.storage.hot.wal_files import (
    HEADER,
    LOCK_NAME,
    MAX_RECORD_BYTES,
    FrameReader,
    Segment,
    WalCorruptionError,
    WalError,
    acquire_lock,
    corruption,
    list_segments,
    segment_path,
    segment_records,
)

CHECKPOINT_NAME = "checkpoint.json"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_SEGMENT_MAX_AGE_S = 600.0
DEFAULT_RETENTION_S = 3600.0


class WriteAheadLog:
    """Append-only log of opaque records in checksummed segment files (see the module docstring).

    Thread-safe: ``append`` may run while another thread is inside ``sync``.
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_max_age_s: float = DEFAULT_SEGMENT_MAX_AGE_S,
        retention_s: float = DEFAULT_RETENTION_S,
        repair: bool = False,
    ) -> None:
        """Open (or create) the log in ``folder``, truncating a torn tail.

        Args:
            folder: The log's folder; created if missing.
            segment_bytes: Start a new segment once the current one is this big.
            segment_max_age_s: ... or once it was started this many seconds ago.
            retention_s: Segments wholly before the checkpoint are deleted only once they were
                last written this long ago.
            repair: Truncate the last segment at its first bad record even if data follows.

        Raises:
            WalLockedError: Another writer has the folder open.
            WalCorruptionError: The last segment or the checkpoint is corrupt.
        """
        if segment_bytes <= 0 or segment_max_age_s <= 0 or retention_s < 0:
            raise ValueError(
                f"WAL sizes must be positive: segment_bytes={segment_bytes}, "
                f"segment_max_age_s={segment_max_age_s}, retention_s={retention_s}."
            )
        self.folder = folder = Path(folder)
        self.retention_s = retention_s
        self.segment_bytes, self.segment_max_age_s = segment_bytes, segment_max_age_s
        self.truncated_bytes = 0
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._retired: list[int] = []
        self._failed: str | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = acquire_lock(folder / LOCK_NAME)
        try:
            self._open(repair)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _open(self, repair: bool) -> None:
        self._segments = list_segments(self.folder)
        if not self._segments:
            self._segments = [Segment(1, segment_path(self.folder, 1))]
            self._segments[0].path.touch()
            fsync_dir(self.folder)
        active = self._segments[-1]
        count, size = self._recover_tail(active.path, repair)
        self._last = active.first + count - 1
        self._synced = self._last
        self._fd = os.open(active.path, os.O_WRONLY | os.O_APPEND)
        # What a killed predecessor wrote may still sit in the page cache only: make it durable
        # before anyone treats it as acknowledged.
        os.fsync(self._fd)
        self._active_size = size
        self._active_started = time.monotonic()
        self._checkpoint, self._state = self._load_checkpoint()

    def _recover_tail(self, path: Path, repair: bool) -> tuple[int, int]:
        data = path.read_bytes()
        reader = FrameReader(data)
        count = sum(1 for _ in reader)
        if reader.problem is None:
            return count, len(data)
        if not (repair or reader.torn_tail()):
            raise corruption(path, reader, self._segments[-1].first + count)
        with path.open("r+b") as stream:
            stream.truncate(reader.offset)
            os.fsync(stream.fileno())
        self.truncated_bytes = len(data) - reader.offset
        return count, reader.offset

    def _load_checkpoint(self) -> tuple[int, dict[str, int]]:
        path = self.folder / CHECKPOINT_NAME
        if not path.exists():
            return 0, {}
        try:
            raw = json.loads(path.read_bytes())
            position = int(raw["position"])
            state = {str(k): int(v) for k, v in dict(raw.get("state") or {}).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise WalCorruptionError(
                f"WAL checkpoint {path} is unreadable ({exc!r}). Delete it to replay the whole "
                f"log into the consumer (replays are idempotent)."
            ) from None
        if not 0 <= position <= self._last:
            raise WalCorruptionError(
                f"WAL checkpoint {path} says position {position} but the log ends at "
                f"{self._last}: segments were removed or replaced. Restore them, or delete the "
                f"checkpoint to replay what is left."
            )
        return position, state

    def append(self, records: Sequence[bytes]) -> int:
        """Write a batch of records (not yet durable: call :meth:`sync`).

        Returns the position of the batch's last record (the last position if it is empty).

        Raises:
            WalError: A record is empty or too big, the write failed (the segment is restored
                to its previous length), or the log failed earlier and must be reopened.
        """
        if not records:
            return self._last
        pack, crc32 = HEADER.pack, zlib.crc32
        parts: list[bytes] = []
        for record in records:
            if not 0 < len(record) <= MAX_RECORD_BYTES:
                raise WalError(
                    f"WAL record of {len(record)} bytes: records must be 1..{MAX_RECORD_BYTES} "
                    f"bytes; split or drop it."
                )
            parts += (pack(len(record), crc32(record)), record)
        data = b"".join(parts)
        with self._lock:
            self._check_usable()
            if self._should_rotate():
                self._rotate()
            self._write(data)
            self._last += len(records)
            return self._last

    def _write(self, data: bytes) -> None:
        view, written = memoryview(data), 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._active_size)
            except OSError:
                self._failed = f"write failed ({exc!r}) and the segment could not be truncated"
            raise WalError(
                f"Cannot write {len(data)} bytes to WAL segment {self._segments[-1].path}: "
                f"{exc!r}. Free disk space or fix the folder's permissions, then retry."
            ) from exc
        self._active_size += len(data)

    def _should_rotate(self) -> bool:
        if self._active_size == 0:
            return False
        age = time.monotonic() - self._active_started
        return self._active_size >= self.segment_bytes or age >= self.segment_max_age_s

    def _rotate(self) -> None:
        # Only the last segment may have a torn tail, so the old one is made durable first.
        os.fsync(self._fd)
        segment = Segment(self._last + 1, segment_path(self.folder, self._last + 1))
        fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        fsync_dir(self.folder)
        self._retired.append(self._fd)  # closed by the next sync(), which may be using it
        self._fd = fd
        self._segments.append(segment)
        self._active_size = 0
        self._active_started = time.monotonic()

    def sync(self) -> int:
        """Make everything appended so far durable (fsync); appends may continue meanwhile.

        Returns:
            The position up to which the log is durable.

        Raises:
            WalError: fsync failed. The log refuses further appends: after a failed fsync the
                kernel may have dropped the dirty pages, so reopen it (which re-reads the disk).
        """
        with self._sync_lock:
            with self._lock:
                self._check_usable()
                retired, self._retired = self._retired, []
                fd, target = self._fd, self._last
            try:
                for old in retired:
                    os.fsync(old)
                    os.close(old)
                os.fsync(fd)
            except OSError as exc:
                self._failed = f"fsync failed: {exc!r}"
                raise WalError(
                    f"fsync of the WAL in {self.folder} failed: {exc!r}. Records since the last "
                    f"successful sync are not durable; reopen the log once the disk is healthy."
                ) from exc
            with self._lock:
                self._synced = max(self._synced, target)
            return target

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise WalError(f"The WAL in {self.folder} is unusable: {self._failed}. Reopen it.")
        if self._fd < 0:
            raise WalError(f"The WAL in {self.folder} is closed; open a new WriteAheadLog.")

    def records(self, after: int = 0, until: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(position, payload)`` for records with ``after < position <= until``.

        ``after`` is typically a checkpoint (0: from the oldest record kept); ``until`` defaults
        to the durable end (:attr:`synced_position`).

        Raises:
            WalCorruptionError: A record in the range fails its checks, or a segment holds fewer
                records than the next segment's name implies.
        """
        with self._lock:
            segments = list(self._segments)
            end = self._synced if until is None else min(until, self._last)
        for index, segment in enumerate(segments):
            seg_last = segments[index + 1].first - 1 if index + 1 < len(segments) else end
            if seg_last <= after or segment.first > end:
                continue
            yield from segment_records(segment, after, min(end, seg_last), seg_last)

    def checkpoint(self, position: int, state: Mapping[str, int] | None = None) -> None:
        """Persist (atomically) that a consumer holds every record up to ``position``.

        ``state`` is small consumer state kept with it (e.g. sequence counters).

        Raises:
            WalError: ``position`` is not durable yet.
        """
        if not 0 <= position <= self._synced:
            raise WalError(
                f"Cannot checkpoint position {position}: the log is durable up to {self._synced}; "
                f"checkpoint only what was synced and delivered."
            )
        saved = dict(state or {})
        payload = json.dumps({"position": position, "state": saved}, sort_keys=True)
        write_atomic(self.folder / CHECKPOINT_NAME, payload.encode())
        self._checkpoint, self._state = position, saved

    def delete_old_segments(self, now: float | None = None) -> list[Path]:
        """Delete segments wholly at or before the checkpoint and older than ``retention_s``.

        Age is judged by the wall clock ``now`` (default ``time.time()``). The active (last)
        segment is never deleted. Returns the deleted files.
        """
        cutoff = (time.time() if now is None else now) - self.retention_s
        with self._lock:
            doomed = [
                segment for segment, after in zip(self._segments, self._segments[1:], strict=False)
                if after.first - 1 <= self._checkpoint and segment.path.stat().st_mtime < cutoff
            ]
            for segment in doomed:
                segment.path.unlink()
                self._segments.remove(segment)
        if doomed:
            fsync_dir(self.folder)
        return [segment.path for segment in doomed]

    @property
    def last_position(self) -> int:
        """Position of the last appended record (0 if none)."""
        return self._last

    @property
    def synced_position(self) -> int:
        """Position up to which records are durable."""
        return self._synced

    @property
    def first_position(self) -> int:
        """Position of the oldest record still on disk (``last_position + 1`` if none)."""
        return self._segments[0].first

    @property
    def checkpoint_position(self) -> int:
        """Position of the last checkpoint (0 if none)."""
        return self._checkpoint

    @property
    def checkpoint_state(self) -> dict[str, int]:
        """State saved with the last checkpoint."""
        return dict(self._state)

    def segment_paths(self) -> list[Path]:
        """The segment files, oldest first."""
        with self._lock:
            return [segment.path for segment in self._segments]

    def size_bytes(self) -> int:
        """Bytes on disk in all segments."""
        with self._lock:
            older, total = self._segments[:-1], self._active_size
        for segment in older:
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                total += segment.path.stat().st_size
        return total

    def close(self) -> None:
        """Sync and release the folder. Idempotent."""
        if self._fd < 0:
            return
        if self._failed is None:
            self.sync()
        with self._lock:
            for fd in (*self._retired, self._fd):
                os.close(fd)
            self._retired, self._fd = [], -1
        os.close(self._lock_fd)

    def __enter__(self) -> WriteAheadLog:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the log."""
        self.close()


