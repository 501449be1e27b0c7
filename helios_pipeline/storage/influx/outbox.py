"""Durable outbox of the InfluxDB mirror: gzip batches of lines in one SQLite file, in order.

A batch is committed to disk (WAL journal, ``synchronous=FULL``: fsync on commit) before
anything is sent, so InfluxDB being down never loses or blocks a local write: batches wait here
and :meth:`Outbox.drain` sends them oldest first, deleting each only after InfluxDB took it.
A crash between the write and the delete sends that batch again, which is harmless: a point
with the same series and time overwrites itself, so every point lands exactly once.

The same file keeps the feed's cursors (what was already queued), updated in the transaction
that queues the batch, so the cursor and the queue can never disagree. Batches InfluxDB refuses
(they can never succeed) move to a ``rejected`` table with the reason, for a person to look at.
"""

from __future__ import annotations

import gzip
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from helios_pipeline.storage.influx.lines import Precision

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    precision TEXT NOT NULL,
    points INTEGER NOT NULL,
    body BLOB NOT NULL,
    queued_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    precision TEXT NOT NULL,
    points INTEGER NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    rejected_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
OUTBOX_FILE = "outbox.sqlite"


@dataclass(frozen=True, slots=True)
class Batch:
    """One queued batch.

    Attributes:
        id: Queue position (increasing).
        precision: Time precision of its lines (``ms`` or ``us``).
        points: Number of lines.
        body: The lines, newline separated, gzip compressed.
    """

    id: int
    precision: Precision
    points: int
    body: bytes


class Outbox:
    """The queue under ``directory`` (created on first use).

    Args:
        directory: Folder of the SQLite file, e.g. ``<data_dir>/influx_outbox``.
        clock_ms: Millisecond wall clock for the queue times (tests may pass their own).
    """

    def __init__(self, directory: Path | str,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.path = Path(directory) / OUTBOX_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def append(self, precision: Precision, lines: Sequence[str], batch_points: int = 5000,
               cursors: Mapping[str, str] | None = None) -> int:
        """Queue ``lines`` as batches of up to ``batch_points`` and set ``cursors``, atomically.

        Returns:
            Number of batches queued.
        """
        if batch_points <= 0:
            raise ValueError(f"batch_points={batch_points}: must be at least 1.")
        now = self._clock_ms()
        rows = [(precision, len(chunk), gzip.compress("\n".join(chunk).encode(), 1), now)
                for chunk in _chunks(lines, batch_points)]
        with self._transaction() as conn:
            conn.executemany("INSERT INTO batches (precision, points, body, queued_at_ms) "
                             "VALUES (?, ?, ?, ?)", rows)
            conn.executemany("INSERT OR REPLACE INTO cursors (name, value) VALUES (?, ?)",
                             list((cursors or {}).items()))
        return len(rows)

    def peek(self) -> Batch | None:
        """The oldest queued batch, or ``None`` when the queue is empty."""
        with self._connect() as conn:
            row = conn.execute("SELECT id, precision, points, body FROM batches "
                               "ORDER BY id LIMIT 1").fetchone()
        return None if row is None else Batch(int(row[0]), row[1], int(row[2]), bytes(row[3]))

    def remove(self, batch: Batch) -> None:
        """Delete a batch InfluxDB took."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM batches WHERE id = ?", (batch.id,))

    def reject(self, batch: Batch, reason: str) -> None:
        """Move a batch InfluxDB refused to the ``rejected`` table, with the reason."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?, ?)",
                         (batch.id, batch.precision, batch.points, batch.body, reason,
                          self._clock_ms()))
            conn.execute("DELETE FROM batches WHERE id = ?", (batch.id,))

    def pending(self) -> tuple[int, int]:
        """``(batches, points)`` waiting to be sent."""
        with self._connect() as conn:
            row = conn.execute("SELECT COUNT(*), COALESCE(SUM(points), 0) FROM batches").fetchone()
        return int(row[0]), int(row[1])

    def rejected(self) -> list[tuple[int, int, str]]:
        """``(batch id, points, reason)`` of every refused batch, oldest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT id, points, reason FROM rejected ORDER BY id").fetchall()
        return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]

    def cursor(self, name: str) -> str | None:
        """A feed cursor's value, or ``None`` when it was never set."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def cursors(self, prefix: str) -> dict[str, str]:
        """Every cursor whose name starts with ``prefix``."""
        with self._connect() as conn:
            rows = conn.execute("SELECT name, value FROM cursors WHERE substr(name, 1, ?) = ?",
                                (len(prefix), prefix)).fetchall()
        return {str(name): str(value) for name, value in rows}

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _chunks(lines: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(lines), size):
        yield lines[start:start + size]
