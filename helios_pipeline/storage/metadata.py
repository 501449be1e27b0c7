"""META tier: SQLite markets, configs and the versioned partition catalog.

:class:`MetadataStore` owns one SQLite file (``storage.paths.metadata_path``); its record
types and their row mapping live in ``storage.catalog_rows``. It opens a fresh connection per
call, so one store can be shared by threads and processes; the database runs in WAL mode so
readers never block the writer. The schema is created on first open and its version
kept in ``schema_version``.

Decimals are stored as their exact plain-notation text, never as REAL. Times are UTC ISO-8601.

The partition catalog has one row per distinct write of a partition (exchange x symbol x
timeframe x day): writing different bytes adds version N+1; writing identical bytes again only
touches ``last_verified_at`` of the latest version, so re-materialising is idempotent and every
change stays traceable. Gaps are recorded, never invented: ``missing_ranges`` are the ranges the
write reported (``StoredPartition.missing_ranges``, from ``helios_pipeline.domain.gaps``) and
``missing_minutes`` is counted from them with ``domain.gaps.count_missing``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from helios_pipeline.domain.models import Market
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.candles import StoredPartition
from helios_pipeline.storage.catalog_rows import (
    MARKET_COLUMNS,
    ArchiveRecord,
    ConfigEntry,
    PartitionRecord,
    PartitionWrite,
    market_from_row,
    market_values,
    partition_from_row,
    partition_values,
)

SCHEMA_VERSION = 3  # 2: partitions.quarantined; 3: archive_months

# What ``json.dumps`` accepts; configs are read back as plain dicts, lists and scalars.
JsonValue = None | bool | int | float | str | Sequence["JsonValue"] | Mapping[str, "JsonValue"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS markets (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    exchange_symbol TEXT NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    active INTEGER NOT NULL,
    tick_size TEXT,
    lot_size TEXT,
    min_qty TEXT,
    max_qty TEXT,
    min_notional TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (exchange, symbol)
);
CREATE TABLE IF NOT EXISTS configs (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    day TEXT NOT NULL,
    version INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    first_ts_ms INTEGER,
    last_ts_ms INTEGER,
    missing_minutes INTEGER NOT NULL,
    missing_ranges TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    written_at TEXT NOT NULL,
    last_verified_at TEXT NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    quarantined INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (exchange, symbol, timeframe, day, version)
);
CREATE INDEX IF NOT EXISTS partitions_by_day ON partitions (day);
CREATE TABLE IF NOT EXISTS archive_months (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    month TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    days TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    path TEXT NOT NULL,
    archived_at TEXT NOT NULL,
    daily_removed TEXT NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, month)
);
"""

_SELECT_MARKETS = f"SELECT {', '.join(MARKET_COLUMNS)} FROM markets"  # noqa: S608
_UPSERT_MARKET = (
    f"INSERT INTO markets ({', '.join(MARKET_COLUMNS)}, updated_at) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(MARKET_COLUMNS) + 1))}) ON CONFLICT (exchange, symbol) "
    "DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*MARKET_COLUMNS[2:], "updated_at"))
)

_PARTITION_COLUMNS = (
    "exchange", "symbol", "timeframe", "day", "version", "row_count", "first_ts_ms",
    "last_ts_ms", "missing_minutes", "missing_ranges", "content_hash", "written_at",
    "last_verified_at", "source", "path", "quarantined",
)
_KEY = "exchange = ? AND symbol = ? AND timeframe = ? AND day = ?"
_LATEST_OF_KEY = f"{_KEY} ORDER BY version DESC LIMIT 1"
_IS_LATEST = """version = (
    SELECT MAX(q.version) FROM partitions q WHERE q.exchange = partitions.exchange
    AND q.symbol = partitions.symbol AND q.timeframe = partitions.timeframe
    AND q.day = partitions.day)"""
_ARCHIVE_REMOVED = ("SELECT daily_removed FROM archive_months WHERE exchange = ? AND symbol = ? "
                    "AND timeframe = ? AND month = ?")
_ORDER = " ORDER BY exchange, symbol, timeframe, day, version"
_TOUCH = f"UPDATE partitions SET last_verified_at = ? WHERE {_KEY} AND version = ?"  # noqa: S608
_INSERT_PARTITION = (
    f"INSERT INTO partitions ({', '.join(_PARTITION_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_PARTITION_COLUMNS))})"
)


class MetadataError(RuntimeError):
    """The metadata database cannot be used (e.g. written by a newer schema)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MetadataStore:
    """Markets, configs and the partition catalog in one SQLite file.

    Args:
        path: Database file; created (with its folder and schema) if missing.
        clock: Source of "now" (tz-aware UTC); injectable for tests.

    Raises:
        MetadataError: The database was written by a newer schema version.
    """

    def __init__(self, path: Path | str, clock: Callable[[], datetime] = _utc_now) -> None:
        self._path = path = Path(path)
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            with _transaction(conn):
                _create_schema(conn)
                self._check_version(conn)

    @property
    def path(self) -> Path:
        """The SQLite database file."""
        return self._path

    def schema_version(self) -> int:
        """Schema version of the database."""
        with self._connect() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0])

    # -- markets ---------------------------------------------------------------------------------

    def store_markets(self, markets: Iterable[Market]) -> int:
        """Insert or update markets, keyed by exchange and symbol.

        Returns:
            Number of markets written.

        Raises:
            ValueError: A trading-rule Decimal is NaN or infinite.
        """
        now = self._now()
        rows = [(*market_values(m), now) for m in markets]
        with self._connect() as conn, _transaction(conn):
            conn.executemany(_UPSERT_MARKET, rows)
        return len(rows)

    def load_markets(self, exchange: str) -> list[Market]:
        """All stored markets of an exchange, ordered by symbol."""
        sql = f"{_SELECT_MARKETS} WHERE exchange = ? ORDER BY symbol"
        with self._connect() as conn:
            return [market_from_row(row) for row in conn.execute(sql, (exchange,))]

    def load_market(self, exchange: str, symbol: str) -> Market | None:
        """One stored market, or None when it was never stored."""
        sql = f"{_SELECT_MARKETS} WHERE exchange = ? AND symbol = ?"
        with self._connect() as conn:
            row = conn.execute(sql, (exchange, symbol)).fetchone()
        return None if row is None else market_from_row(row)

    # -- configs ---------------------------------------------------------------------------------

    def store_config(self, key: str, value: JsonValue) -> None:
        """Store a JSON-serialisable value under ``key``, replacing any previous value.

        Raises:
            TypeError: ``value`` is not JSON-serialisable (e.g. a Decimal: store it as a string).
            ValueError: ``value`` holds NaN or infinity, which JSON cannot express.
        """
        text = json.dumps(value, sort_keys=True, allow_nan=False)
        with self._connect() as conn, _transaction(conn):
            conn.execute(
                "INSERT INTO configs (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, text, self._now()),
            )

    def load_config(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when there is none."""
        entry = self.load_config_entry(key)
        return default if entry is None else entry.value

    def load_config_entry(self, key: str) -> ConfigEntry | None:
        """The value under ``key`` with the time it was stored, or None."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT value, updated_at FROM configs WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return ConfigEntry(key, json.loads(row[0]), datetime.fromisoformat(row[1]))

    # -- partition catalog -----------------------------------------------------------------------

    def record_partition(
        self,
        exchange: str,
        symbol: str,
        timeframe: Timeframe,
        day: date,
        stored: StoredPartition,
        source: str,
        quarantined: int = 0,
    ) -> PartitionRecord:
        """Record a write of a partition and return the catalog row it maps to.

        A different content hash than the latest version's adds version N+1 (1 for the first
        write). The same hash adds nothing: the latest version is returned with its
        ``last_verified_at`` moved to now.

        Args:
            exchange: ccxt exchange id the data came from.
            symbol: ccxt unified symbol.
            timeframe: Candle length.
            day: UTC day of the partition.
            stored: What ``CandleStore.store`` returned for the write.
            source: Where the data came from (``binance@http://127.0.0.1:8081``, ``replay``).
            quarantined: Rows of the partition that went to quarantine instead.
        """
        (record,) = self.record_partitions(
            [PartitionWrite(exchange, symbol, timeframe, day, stored, source, quarantined)])
        return record

    def record_partitions(self, writes: Sequence[PartitionWrite]) -> list[PartitionRecord]:
        """:meth:`record_partition` for many writes in one transaction (a backfill's range)."""
        now = self._now()
        records = []
        with self._connect() as conn, _transaction(conn):
            for write in writes:
                key = (write.exchange, write.symbol, write.timeframe.value, write.day.isoformat())
                latest = _select(conn, _LATEST_OF_KEY, key)
                if latest and latest[0].content_hash == write.stored.content_hash:
                    conn.execute(_TOUCH, (now, *key, latest[0].version))
                else:
                    version = latest[0].version + 1 if latest else 1
                    values = (*key, version, *partition_values(write.timeframe, write.stored),
                              now, now, write.source, str(write.stored.path), write.quarantined)
                    conn.execute(_INSERT_PARTITION, values)
                records.append(_select(conn, _LATEST_OF_KEY, key)[0])
        return records

    def latest_partition(
        self, exchange: str, symbol: str, timeframe: Timeframe, day: date
    ) -> PartitionRecord | None:
        """The newest version of a partition, or None when it was never recorded."""
        key = (exchange, symbol, timeframe.value, day.isoformat())
        with self._connect() as conn:
            latest = _select(conn, _LATEST_OF_KEY, key)
        return latest[0] if latest else None

    def partition_history(
        self, exchange: str, symbol: str, timeframe: Timeframe, day: date
    ) -> list[PartitionRecord]:
        """Every version of a partition, oldest first."""
        key = (exchange, symbol, timeframe.value, day.isoformat())
        with self._connect() as conn:
            return _select(conn, f"{_KEY} ORDER BY version", key)

    def list_partitions(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        timeframe: Timeframe | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[PartitionRecord]:
        """Latest version of every recorded partition matching the filters (all optional).

        Args:
            exchange: Only this exchange.
            symbol: Only this unified symbol.
            timeframe: Only this timeframe.
            start: Only days on or after this one.
            end: Only days on or before this one.

        Returns:
            Records ordered by exchange, symbol, timeframe and day.
        """
        filters = [
            ("exchange = ?", exchange),
            ("symbol = ?", symbol),
            ("timeframe = ?", None if timeframe is None else timeframe.value),
            ("day >= ?", None if start is None else start.isoformat()),
            ("day <= ?", None if end is None else end.isoformat()),
        ]
        used = [(clause, value) for clause, value in filters if value is not None]
        where = " AND ".join([_IS_LATEST, *(clause for clause, _ in used)]) + _ORDER
        with self._connect() as conn:
            return _select(conn, where, tuple(value for _, value in used))

    def stored_symbols(self, exchange: str) -> set[str]:
        """Symbols with at least one recorded partition on ``exchange``."""
        with self._connect() as conn:
            rows = conn.execute("SELECT DISTINCT symbol FROM partitions WHERE exchange = ?",
                                (exchange,)).fetchall()
        return {row[0] for row in rows}

    def partitions_as_of(
        self, exchange: str, symbol: str, timeframe: Timeframe, start: date, end: date,
        at: datetime,
    ) -> list[PartitionRecord]:
        """Per day from ``start`` to ``end``, the version that was the newest at ``at``.

        Days first written after ``at`` are left out. Ordered by day.
        """
        if at.tzinfo is None:
            raise ValueError(f"Naive datetime {at.isoformat()}: give a tz-aware (UTC) moment.")
        key = (exchange, symbol, timeframe.value, start.isoformat(), end.isoformat())
        where = ("exchange = ? AND symbol = ? AND timeframe = ? AND day >= ? AND day <= ?"
                 " ORDER BY day, version")
        with self._connect() as conn:
            versions = _select(conn, where, key)
        newest: dict[date, PartitionRecord] = {}
        for record in versions:
            if record.written_at <= at:
                newest[record.day] = record
        return [newest[day] for day in sorted(newest)]

    # -- cold archive ----------------------------------------------------------------------------

    def record_archive(self, record: ArchiveRecord) -> None:
        """Record a verified archive month (replacing the month's earlier record).

        Days removed in earlier runs stay listed in ``daily_removed``.
        """
        key = (record.exchange, record.symbol, record.timeframe.value, record.month.isoformat())
        with self._connect() as conn, _transaction(conn):
            row = conn.execute(_ARCHIVE_REMOVED, key).fetchone()
            removed = set(record.daily_removed) | {
                date.fromisoformat(d) for d in (json.loads(row[0]) if row else [])}
            conn.execute(
                "INSERT OR REPLACE INTO archive_months VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, record.rows, json.dumps([d.isoformat() for d in record.days]),
                 record.content_hash, record.path, record.archived_at.astimezone(UTC).isoformat(),
                 json.dumps(sorted(d.isoformat() for d in removed))))

    def archive_months(self, exchange: str, symbol: str | None = None,
                       timeframe: Timeframe | None = None) -> list[ArchiveRecord]:
        """Recorded archive months of an exchange (optionally one symbol / timeframe), by month."""
        sql = ("SELECT * FROM archive_months WHERE exchange = ? AND (? IS NULL OR symbol = ?) "
               "AND (? IS NULL OR timeframe = ?) ORDER BY symbol, timeframe, month")
        tf = None if timeframe is None else timeframe.value
        with self._connect() as conn:
            rows = conn.execute(sql, (exchange, symbol, symbol, tf, tf)).fetchall()
        return [ArchiveRecord(
            exchange=r[0], symbol=r[1], timeframe=Timeframe(r[2]),
            month=date.fromisoformat(r[3]), rows=r[4],
            days=tuple(date.fromisoformat(d) for d in json.loads(r[5])), content_hash=r[6],
            path=r[7], archived_at=datetime.fromisoformat(r[8]),
            daily_removed=tuple(date.fromisoformat(d) for d in json.loads(r[9])),
        ) for r in rows]

    # -- internals -------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: transactions are explicit (see _transaction), never implicit.
        conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def _check_version(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] is None:
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, self._now()))
        elif row[0] > SCHEMA_VERSION:
            raise MetadataError(
                f"{self._path} has metadata schema version {row[0]}; this code knows up to "
                f"{SCHEMA_VERSION}. Upgrade helios_pipeline."
            )
        elif row[0] < SCHEMA_VERSION:
            _migrate(conn)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, self._now()))

    def _now(self) -> str:
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError("The metadata clock returned a naive datetime; it must be UTC-aware.")
        return moment.astimezone(UTC).isoformat()


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any error. Serialises writers."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _select(
    conn: sqlite3.Connection, where: str, params: tuple[object, ...]
) -> list[PartitionRecord]:
    """Catalog rows matching ``where``, a clause built from this module's constants only."""
    sql = f"SELECT {', '.join(_PARTITION_COLUMNS)} FROM partitions WHERE {where}"  # noqa: S608
    return [partition_from_row(row) for row in conn.execute(sql, params)]


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older database to the current schema.

    v2 added ``partitions.quarantined``; v3 the ``archive_months`` table, which
    ``_create_schema`` creates on every open.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(partitions)")}
    if "quarantined" not in columns:
        conn.execute("ALTER TABLE partitions ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0")


def _create_schema(conn: sqlite3.Connection) -> None:
    # executescript would COMMIT the open transaction; run the statements one by one instead.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
