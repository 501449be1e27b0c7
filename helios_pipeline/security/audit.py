"""An append-only, hash-chained audit trail in the metadata SQLite database.

Every row's ``hash`` is ``sha256(prev_hash + canonical row)``, where the canonical row is the
JSON of ``seq, at, kind, actor, subject, detail`` with sorted keys. :meth:`AuditLog.verify`
recomputes the chain: an edited row breaks its own hash, a deleted row breaks the next row's
``prev_hash`` (or, at the end, leaves a hole below the highest sequence number SQLite ever
issued). Triggers refuse ``UPDATE`` and ``DELETE``, so only someone who drops them on purpose can
change history, and ``verify`` then says which row.

Kinds in use: ``backfill``, ``refetch``, ``delete``, ``credential_set``, ``credential_delete``,
``credential_use``, ``key_rotation``, ``config_change``, ``access_denied``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helios_pipeline.security.redact import redact_mapping

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_kind_at ON audit_log (kind, at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""


@dataclass(frozen=True)
class AuditEntry:
    """One audit row.

    Attributes:
        seq: Position in the chain (1, 2, ...).
        at: When it happened (UTC, ISO 8601).
        kind: What happened (``backfill``, ``credential_use``, ...).
        actor: Who did it: ``user@host pid``.
        subject: What it concerned (``binance.apiKey``, ``BTC/USDT 2024-04-01..2024-04-02``).
        detail: Further facts, credentials masked.
        prev_hash: The previous row's hash (:data:`GENESIS` for the first).
        hash: ``sha256(prev_hash + canonical row)``.
    """

    seq: int
    at: str
    kind: str
    actor: str
    subject: str
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        """The hash this row's content and ``prev_hash`` give."""
        return chain_hash(self.prev_hash, self.seq, self.at, self.kind, self.actor,
                          self.subject, self.detail)


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found.

    Attributes:
        rows: Rows checked.
        head: Hash of the last row (record it elsewhere to detect a rewritten chain).
        problems: One line per broken link; empty when the chain is intact.
    """

    rows: int
    head: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return not self.problems


def chain_hash(prev_hash: str, seq: int, at: str, kind: str, actor: str, subject: str,
               detail: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the row)``, hex."""
    canonical = json.dumps(
        {"seq": seq, "at": at, "kind": kind, "actor": actor, "subject": subject,
         "detail": detail}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def default_actor() -> str:
    """``user@host pid`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{os.uname().nodename} pid {os.getpid()}"


def _utc_now() -> datetime:
    return datetime.now(tz=UTC)


class AuditLog:
    """The audit trail in the SQLite file at ``path`` (the metadata database).

    Args:
        path: The SQLite file (created with its folder if missing).
        actor: Who appends (default :func:`default_actor`).
        clock: Current UTC time.
    """

    def __init__(self, path: Path, actor: str | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = Path(path)
        self._actor = actor or default_actor()
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def record(self, kind: str, subject: str, **detail: Any) -> AuditEntry:
        """Append one row (credentials in ``detail`` masked) and return it."""
        clean = redact_mapping({k: _jsonable(v) for k, v in detail.items()})
        at = self._clock().astimezone(UTC).isoformat(timespec="microseconds")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute(
                    "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                prev = last[0] if last else GENESIS
                seq = _next_seq(conn)
                digest = chain_hash(prev, seq, at, kind, self._actor, subject, clean)
                conn.execute(
                    "INSERT INTO audit_log (seq, at, kind, actor, subject, detail, prev_hash, "
                    "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, at, kind, self._actor, subject, _canonical(clean), prev, digest))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return AuditEntry(seq, at, kind, self._actor, subject, clean, prev, digest)

    def entries(self, since: datetime | None = None, kind: str | None = None
                ) -> list[AuditEntry]:
        """Rows in order, optionally from ``since`` on and of one ``kind``."""
        sql, params = "SELECT * FROM audit_log WHERE 1=1", []
        if since is not None:
            sql += " AND at >= ?"
            params.append(since.astimezone(UTC).isoformat(timespec="microseconds"))
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [_entry(row) for row in rows]

    def last(self, kind: str) -> AuditEntry | None:
        """The most recent row of ``kind``, or ``None``."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM audit_log WHERE kind = ? ORDER BY seq DESC "
                               "LIMIT 1", (kind,)).fetchone()
        return _entry(row) if row else None

    def record_config(self, subject: str, config: Mapping[str, Any]) -> AuditEntry | None:
        """Append a ``config_change`` row when ``config`` differs from the last one recorded.

        The row lists the changed keys with their old and new values (credentials masked);
        the first call records the whole configuration. Returns the row, or ``None`` when
        nothing changed.
        """
        current = redact_mapping({k: _jsonable(v) for k, v in config.items()})
        previous = self.last("config_change")
        before = previous.detail.get("config", {}) if previous is not None else {}
        changed = {k: {"old": before.get(k), "new": v} for k, v in current.items()
                   if before.get(k) != v}
        if previous is not None and not changed:
            return None
        return self.record("config_change", subject, config=current,
                           changed=sorted(changed) if previous is not None else [])

    def verify(self) -> VerifyResult:
        """Recompute the chain; every edited, inserted or deleted row is reported."""
        with self._connect() as conn:
            rows = [_entry(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY seq")]
            issued = _issued(conn)
        problems: list[str] = []
        prev, expected_seq = GENESIS, 1
        for entry in rows:
            if entry.seq != expected_seq:
                problems.append(f"rows {expected_seq}..{entry.seq - 1} are missing (deleted)")
            if entry.prev_hash != prev:
                problems.append(f"row {entry.seq}: prev_hash does not match row "
                                f"{entry.seq - 1}'s hash (a row before it was deleted or edited)")
            if entry.expected_hash() != entry.hash:
                problems.append(f"row {entry.seq} ({entry.kind} {entry.subject}): content does "
                                "not match its hash (edited)")
            prev, expected_seq = entry.hash, entry.seq + 1
        if issued >= expected_seq:
            problems.append(f"rows {expected_seq}..{issued} are missing at the end (deleted)")
        return VerifyResult(len(rows), prev, tuple(problems))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()


def _next_seq(conn: sqlite3.Connection) -> int:
    return _issued(conn) + 1


def _issued(conn: sqlite3.Connection) -> int:
    """The highest sequence number SQLite ever issued for the table (survives deletions)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
    return int(row[0]) if row else 0


def _canonical(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    seq, at, kind, actor, subject, detail, prev_hash, digest = row
    return AuditEntry(int(seq), at, kind, actor, subject, json.loads(detail), prev_hash, digest)
