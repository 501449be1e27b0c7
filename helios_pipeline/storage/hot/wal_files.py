"""The write-ahead log's files: record framing, segment files and their names, the folder lock.

A record is opaque bytes framed as ``u32 length | u32 crc32(payload) | payload`` (little endian).
A segment file ``wal-<first position, 20 digits>.log`` holds consecutive records; the folder's
``LOCK`` file is held (``flock``) by the one process that writes the log. ``wal`` builds the log
on these; the rules for what a bad record means (torn tail or corruption) live here.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 16 * 1024 * 1024
SEGMENT_PREFIX = "wal-"
SEGMENT_SUFFIX = ".log"
LOCK_NAME = "LOCK"


class WalError(Exception):
    """The write-ahead log cannot do what was asked; the message says why and what to do."""


class WalCorruptionError(WalError):
    """A record that should be intact fails its length or CRC check."""


class WalLockedError(WalError):
    """Another process (or another ``WriteAheadLog`` in this one) has the folder open."""


class Problem(Enum):
    """Why a segment's records stop before the end of its bytes."""

    SHORT_HEADER = "incomplete record header"
    BAD_LENGTH = "impossible record length"
    PAST_END = "record runs past the end of the file"
    BAD_CRC = "CRC32 mismatch"


@dataclass(frozen=True)
class Segment:
    """One segment file and the position of its first record."""

    first: int
    path: Path


class FrameReader:
    """Iterates the payloads of a segment's bytes; records where and why it stopped."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0
        self.problem: Problem | None = None
        self.bad_end = 0

    def __iter__(self) -> Iterator[bytes]:
        data, size, off = self.data, len(self.data), 0
        unpack, crc32 = HEADER.unpack_from, zlib.crc32
        while off < size:
            self.offset = off
            if off + HEADER.size > size:
                self.problem = Problem.SHORT_HEADER
                return
            length, crc = unpack(data, off)
            end = off + HEADER.size + length
            self.bad_end = end
            if length == 0 or length > MAX_RECORD_BYTES:
                self.problem = Problem.BAD_LENGTH
                return
            if end > size:
                self.problem = Problem.PAST_END
                return
            payload = data[off + HEADER.size : end]
            if crc32(payload) != crc:
                self.problem = Problem.BAD_CRC
                return
            yield payload
            off = end
        self.offset = off

    def torn_tail(self) -> bool:
        """Whether the stop is what a crash during the last write leaves behind."""
        if self.problem in (Problem.SHORT_HEADER, Problem.PAST_END):
            return True
        rest_from = self.bad_end if self.problem is Problem.BAD_CRC else self.offset
        # A zero-filled remainder is blocks the file system allocated but never got data for.
        return not self.data[rest_from:].strip(b"\0")


def segment_records(
    segment: Segment, after: int, until: int, seg_last: int
) -> Iterator[tuple[int, bytes]]:
    """Records of one segment in ``(after, until]``; ``seg_last`` is what it must reach.

    Raises:
        WalCorruptionError: A record fails its checks, or the segment ends before ``seg_last``.
    """
    reader = FrameReader(segment.path.read_bytes())
    position = segment.first - 1
    for payload in reader:
        position += 1
        if position > until:
            return
        if position > after:
            yield position, payload
    if position < seg_last:
        if reader.problem is None:
            raise WalCorruptionError(
                f"WAL segment {segment.path} ends at position {position} but should reach "
                f"{seg_last}: the file was truncated or replaced. Restore it from a backup."
            )
        raise corruption(segment.path, reader, position + 1)


def corruption(path: Path, reader: FrameReader, position: int) -> WalCorruptionError:
    """The error for a bad record that is not a torn tail, saying what to do about it."""
    problem = reader.problem.value if reader.problem else "unknown"
    return WalCorruptionError(
        f"WAL segment {path} is corrupt at byte {reader.offset} (record position {position}): "
        f"{problem}, with data after it. Acknowledged records may follow, so this is not "
        f"skipped silently: restore the file from a backup, or open the log with repair=True "
        f"to truncate the last segment at this record (losing what follows it)."
    )


def segment_path(folder: Path, first: int) -> Path:
    """File of the segment whose first record is at position ``first``."""
    return folder / f"{SEGMENT_PREFIX}{first:020d}{SEGMENT_SUFFIX}"


def list_segments(folder: Path) -> list[Segment]:
    """The folder's segments, oldest first.

    Raises:
        WalCorruptionError: A file looks like a segment but its name is not one.
    """
    segments = []
    for path in folder.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"):
        digits = path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
        if not digits.isdigit() or int(digits) < 1:
            raise WalCorruptionError(
                f"Unexpected file {path} in the WAL folder: segment names are "
                f"'wal-<first position>.log'. Move it elsewhere."
            )
        segments.append(Segment(int(digits), path))
    return sorted(segments, key=lambda s: s.first)


def acquire_lock(path: Path) -> int:
    """Lock the log folder for this writer; returns the lock file's descriptor.

    Raises:
        WalLockedError: Another writer holds it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise WalLockedError(
                f"The WAL in {path.parent} is in use by another writer; stop it first (one "
                f"writer per log)."
            ) from None
        raise
    return fd
