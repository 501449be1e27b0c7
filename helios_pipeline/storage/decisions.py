"""Decisions about single candles, kept in the catalog database: confirmed, unconfirmed, released.

A candle that broke a price rule is confirmed (stored, with the reference venue's candles as
evidence) or not (quarantined, ``unconfirmed_by`` the venue) by ``batch.confirm``; a quarantined
candle can be restored by hand (``helios quarantine release``). Each decision is one row of the
``candle_decisions`` table in the catalog's SQLite file, so the catalog says why a stored candle
that broke a rule is there. The table is created on first use and only ever appended to.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Decision = Literal["confirmed", "unconfirmed", "released"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candle_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    open_ms INTEGER NOT NULL,
    decision TEXT NOT NULL,
    rules TEXT NOT NULL,
    reference TEXT NOT NULL,
    evidence TEXT NOT NULL,
    decided_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class CandleDecision:
    """One decision about one candle.

    Attributes:
        exchange: The venue the candle came from (catalog exchange id).
        symbol: ccxt unified symbol.
        timeframe: ``1m`` ...
        open_ms: The candle's open time, ms epoch.
        decision: ``confirmed``, ``unconfirmed`` or ``released``.
        rules: The rules it broke.
        reference: The venue that confirmed or did not (``""`` for a release by hand).
        evidence: The reference venue's candles (text values) or, for a release, who and why.
        decided_at: ISO 8601 UTC.
    """

    exchange: str
    symbol: str
    timeframe: str
    open_ms: int
    decision: Decision
    rules: tuple[str, ...]
    reference: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    decided_at: str = field(default_factory=lambda: datetime.now(tz=UTC).isoformat())


class DecisionStore:
    """Append and read candle decisions in the catalog database file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            conn.execute(_SCHEMA)
            yield conn
            conn.commit()
        finally:
            conn.close()

    def record(self, decisions: Iterable[CandleDecision]) -> None:
        """Append decisions (one transaction)."""
        rows = [(d.exchange, d.symbol, d.timeframe, d.open_ms, d.decision, json.dumps(d.rules),
                 d.reference, json.dumps(d.evidence, sort_keys=True), d.decided_at)
                for d in decisions]
        if not rows:
            return
        with self._connect() as conn:
            conn.executemany(
                "INSERT INTO candle_decisions (exchange, symbol, timeframe, open_ms, decision, "
                "rules, reference, evidence, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def decisions(self, symbol: str | None = None, start_ms: int | None = None,
                  end_ms: int | None = None) -> list[CandleDecision]:
        """Decisions, oldest first, optionally of one symbol and open times in a range."""
        query = ("SELECT exchange, symbol, timeframe, open_ms, decision, rules, reference, "
                 "evidence, decided_at FROM candle_decisions WHERE 1 = 1")
        args: list[object] = []
        if symbol is not None:
            query += " AND symbol = ?"
            args.append(symbol)
        if start_ms is not None:
            query += " AND open_ms >= ?"
            args.append(start_ms)
        if end_ms is not None:
            query += " AND open_ms < ?"
            args.append(end_ms)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        return [CandleDecision(r[0], r[1], r[2], int(r[3]), r[4], tuple(json.loads(r[5])), r[6],
                               json.loads(r[7]), r[8]) for r in rows]
