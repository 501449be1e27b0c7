"""Trading sessions: what the grid bot saw, decided and did, one folder per session.

::

    trading_sessions/session_20241222_143022/
        session.json               id, started_at, symbols, strategy, parameters, ended_at
        market_data_snapshot.csv   the market data the bot decided on
        signals.csv                its signals
        trades.csv                 its orders and fills

The bot writes through :class:`TradingSessions`: ``start`` creates the folder, ``append`` adds
rows to one of the three record files (CSV with a header; values written as given, so
``Decimal`` prices keep every digit) and ``end`` closes the session. Appends are flushed and
fsynced before they return, so a crash loses nothing that was acknowledged; a partially
written last line (a crash mid-write) is dropped when the file is read back.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from helios_pipeline.storage.atomic import fsync_dir, write_atomic

TRADING_SESSIONS = "trading_sessions"
RecordKind = Literal["market_data_snapshot", "signals", "trades"]
KINDS: tuple[RecordKind, ...] = ("market_data_snapshot", "signals", "trades")
_SESSION_ID = re.compile(r"^session_\d{8}_\d{6}(_\d+)?$")


class SessionError(ValueError):
    """A session or record that cannot be written or read as asked."""


@dataclass(frozen=True)
class SessionInfo:
    """A session's description (``session.json``)."""

    session_id: str
    started_at: str
    symbols: tuple[str, ...]
    strategy: str
    parameters: Mapping[str, Any]
    ended_at: str | None = None


class TradingSessions:
    """The ``trading_sessions/`` folder of one data root."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / TRADING_SESSIONS

    def start(self, symbols: Sequence[str], strategy: str,
              parameters: Mapping[str, Any] | None = None,
              now: datetime | None = None) -> SessionInfo:
        """Create a new session folder named for its UTC start time."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        base = f"session_{moment:%Y%m%d_%H%M%S}"
        session_id, n = base, 1
        while (self.root / session_id).exists():  # two sessions started in the same second
            n += 1
            session_id = f"{base}_{n}"
        info = SessionInfo(session_id, moment.isoformat(), tuple(symbols), strategy,
                           dict(parameters or {}))
        (self.root / session_id).mkdir(parents=True)
        self._write_info(info)
        return info

    def append(self, session_id: str, kind: RecordKind,
               rows: Sequence[Mapping[str, Any]]) -> int:
        """Append rows to one record file; the first append fixes its columns.

        Raises:
            SessionError: Unknown session or kind, or a row whose columns differ from the file's.
        """
        path = self._record_path(session_id, kind)
        if not rows:
            return 0
        columns = list(rows[0])
        header = _header_of(path) if path.exists() else []
        if header and header != columns:
            raise SessionError(f"{session_id}/{kind}.csv has columns {header}; got {columns}.")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        if not header:
            writer.writeheader()
        for row in rows:
            if list(row) != columns:
                raise SessionError(f"Row {dict(row)} does not have the columns {columns}.")
            writer.writerow(row)
        with path.open("a", encoding="utf-8", newline="") as stream:
            stream.write(text.getvalue())
            stream.flush()
            os.fsync(stream.fileno())
        if not header:
            fsync_dir(path.parent)
        return len(rows)

    def end(self, session_id: str, now: datetime | None = None) -> SessionInfo:
        """Record the session's end time."""
        info = self.info(session_id)
        ended = SessionInfo(**{**info.__dict__,
                               "ended_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat()})
        self._write_info(ended)
        return ended

    def info(self, session_id: str) -> SessionInfo:
        """A session's description."""
        path = self._folder(session_id) / "session.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["symbols"] = tuple(data["symbols"])
        return SessionInfo(**data)

    def load(self, session_id: str, kind: RecordKind) -> pd.DataFrame:
        """One record file as strings (the caller decides the types); empty if never written."""
        path = self._record_path(session_id, kind)
        if not path.exists():
            return pd.DataFrame()
        text = path.read_text(encoding="utf-8")
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a line cut by a crash is not a record
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)

    def sessions(self) -> list[str]:
        """Every session id, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _SESSION_ID.match(p.name))

    def _folder(self, session_id: str) -> Path:
        if not _SESSION_ID.match(session_id) or not (self.root / session_id).is_dir():
            raise SessionError(f"No trading session {session_id!r} under {self.root}.")
        return self.root / session_id

    def _record_path(self, session_id: str, kind: str) -> Path:
        if kind not in KINDS:
            raise SessionError(f"Unknown record kind {kind!r}; expected one of {', '.join(KINDS)}.")
        return self._folder(session_id) / f"{kind}.csv"

    def _write_info(self, info: SessionInfo) -> None:
        data = {**info.__dict__, "symbols": list(info.symbols)}
        write_atomic(self.root / info.session_id / "session.json",
                     json.dumps(data, indent=2, sort_keys=True, default=str).encode())


def _header_of(path: Path) -> list[str]:
    """The file's header; a last line cut by a crash is cut off first, so appends stay whole."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as stream:
            stream.truncate(data.rfind(b"\n") + 1)
            os.fsync(stream.fileno())
        data = data[: data.rfind(b"\n") + 1]
    first = data.split(b"\n", 1)[0].decode("utf-8")
    return next(csv.reader([first]), []) if first else []
