"""Quarantine: rows that failed validation, kept with the rules they broke, as JSON Lines files.

Nothing that fails a hard rule reaches the candle partitions; it lands here instead, with the
offending values and the raw row as received, so that it can be inspected, reported and, if a rule
was wrong, replayed. Layout (``storage.paths``)::

    quarantine/{STORAGE_ID}/{YYYY}/{MM}/ohlcv_{tf}_{YYYYMMDD}.jsonl   one batch partition
    quarantine/{STORAGE_ID}/{YYYY}/{MM}/live_{YYYYMMDD}.jsonl         the realtime path, appended

A batch partition's file is replaced as a whole, atomically (``storage.atomic``), each time the
partition is materialised: re-running a day yields the same records, never duplicates, and when
only the detection times differ the file is left untouched (identical bytes). The live file is
appended and fsynced record by record batch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from helios_pipeline.domain.timeframe import Timeframe, days_between, ms_to_datetime
from helios_pipeline.storage.atomic import fsync_dir, write_atomic
from helios_pipeline.storage.paths import (
    quarantine_live_path,
    quarantine_month_dir,
    quarantine_ohlcv_path,
)

_MAX_DEPTH = 32  # deeper raw payloads are kept as their repr
_MAX_INT_BITS = 1024  # larger ints are summarised (str() of a huge int is refused by Python)
_FIELDS = ("symbol", "kind", "timestamp_ms", "rules", "values", "raw", "source", "detected_at")


class QuarantineFileError(ValueError):
    """A quarantine file holds a line that is not a quarantine record."""


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """One rejected row and why it was rejected.

    Attributes:
        symbol: ccxt unified symbol.
        kind: What the row was: ``ohlcv_1m`` (candle and timeframe), ``ticker``.
        timestamp_ms: Open (or exchange) time of the row, ms epoch; None when it had none.
        rules: Names of the rules it broke (``validation.rules.Rule`` values).
        values: The offending fields as text, exactly as received (``{"close": "NaN"}``).
        raw: The row as received, JSON-able (:func:`jsonable`).
        source: Where it came from (``binance@http://...``, ``replay``).
        detected_at: When validation rejected it, ISO 8601 UTC.
    """

    symbol: str
    kind: str
    timestamp_ms: int | None
    rules: tuple[str, ...]
    values: Mapping[str, str] = field(default_factory=dict)
    raw: Any = None
    source: str = ""
    detected_at: str = ""

    @classmethod
    def create(
        cls,
        symbol: str,
        kind: str,
        timestamp_ms: int | None,
        rules: Iterable[str],
        values: Mapping[str, object],
        raw: object,
        source: str,
        detected_at: datetime | None = None,
    ) -> QuarantineRecord:
        """A record with ``raw`` made JSON-able, values as text and ``detected_at`` now (UTC)."""
        moment = detected_at or datetime.now(tz=UTC)
        return cls(
            symbol=symbol, kind=kind, timestamp_ms=timestamp_ms, rules=tuple(rules),
            values={str(k): _text(v) for k, v in values.items()}, raw=jsonable(raw),
            source=source, detected_at=moment.astimezone(UTC).isoformat(),
        )

    def to_json(self) -> str:
        """One JSON line (no newline), keys sorted; NaN and infinity never appear."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["rules"] = list(self.rules)
        data["values"] = dict(self.values)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> QuarantineRecord:
        """Parse :meth:`to_json` output.

        Raises:
            ValueError: Not a JSON object with the record's fields and types.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or sorted(data) != sorted(_FIELDS):
            raise ValueError("not a quarantine record (fields differ)")
        stamp, rules, values = data["timestamp_ms"], data["rules"], data["values"]
        if not (stamp is None or type(stamp) is int) or not isinstance(rules, list) \
                or not isinstance(values, dict):
            raise ValueError("a quarantine record field has the wrong type")
        return cls(
            symbol=str(data["symbol"]), kind=str(data["kind"]), timestamp_ms=stamp,
            rules=tuple(str(r) for r in rules), values={str(k): str(v) for k, v in values.items()},
            raw=data["raw"], source=str(data["source"]), detected_at=str(data["detected_at"]),
        )

    def day(self) -> date:
        """UTC day the record is filed under: its row's time, else its detection time."""
        if self.timestamp_ms is not None:
            return ms_to_datetime(self.timestamp_ms).date()
        return datetime.fromisoformat(self.detected_at).astimezone(UTC).date()


def jsonable(value: object, depth: int = 0) -> Any:
    """``value`` as something ``json.dumps(..., allow_nan=False)`` accepts, losing no text.

    Decimals and non-finite floats become strings, tuples lists, mapping keys strings, enums their
    value, datetimes ISO text; anything else (or nested deeper than 32) becomes its ``repr``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= _MAX_INT_BITS else _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= _MAX_DEPTH:
        return _repr(value)
    if isinstance(value, list | tuple):
        return [jsonable(x, depth + 1) for x in value]
    if isinstance(value, Mapping):
        return {str(jsonable(k, depth + 1)): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value, depth + 1)
    return _repr(value)


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a repr that raises still must not lose the record
        return f"<unrepresentable {type(value).__name__}>"


def _text(value: object) -> str:
    """Field value as text for ``QuarantineRecord.values`` (strings stay as they are)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        return f"<int of {value.bit_length()} bits>"
    return _repr(value) if isinstance(value, float) and value != value else str(value)


class QuarantineStore:
    """Quarantine files under ``{data_dir}/quarantine``.

    Args:
        data_dir: Data root (``Settings.data_dir``).
    """

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    def path(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> Path:
        """File of one batch partition's records."""
        return quarantine_ohlcv_path(self._data_dir, symbol, timeframe, day, exchange)

    def store_partition(
        self,
        symbol: str,
        timeframe: Timeframe,
        day: date,
        records: Sequence[QuarantineRecord],
        exchange: str | None = None,
    ) -> Path | None:
        """Replace the records of one batch partition (atomic; no records removes the file).

        Args:
            symbol: ccxt unified symbol.
            timeframe: Candle length of the partition.
            day: UTC day of the partition.
            records: Every record of the partition, in the order the rows were received.
            exchange: Exchange-qualifies the folder when given.

        Returns:
            The file, or None when there are no records (and no file any more).
        """
        path = self.path(symbol, timeframe, day, exchange)
        if not records:
            path.unlink(missing_ok=True)
            return None
        if path.is_file() and _same(_read(path), records):
            return path  # identical apart from detection times: keep the bytes
        write_atomic(path, _lines(records))
        return path

    def append(
        self, records: Iterable[QuarantineRecord], exchange: str | None = None
    ) -> list[Path]:
        """Append realtime records to their day's ``live_`` file, fsynced before returning.

        Returns:
            The files appended to.
        """
        by_path: dict[Path, list[QuarantineRecord]] = {}
        for record in records:
            path = quarantine_live_path(self._data_dir, record.symbol, record.day(), exchange)
            by_path.setdefault(path, []).append(record)
        for path, group in by_path.items():
            created = not path.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as stream:
                stream.write(_lines(group))
                stream.flush()
                os.fsync(stream.fileno())
            if created:
                fsync_dir(path.parent)
        return list(by_path)

    def load_partition(
        self, symbol: str, timeframe: Timeframe, day: date, exchange: str | None = None
    ) -> list[QuarantineRecord]:
        """Records of one batch partition (empty when it has none).

        Raises:
            QuarantineFileError: The file holds a line that is not a record.
        """
        path = self.path(symbol, timeframe, day, exchange)
        return _read(path) if path.is_file() else []

    def load(
        self, symbol: str, start: date, end: date, exchange: str | None = None
    ) -> list[QuarantineRecord]:
        """Every record of the days ``start`` to ``end`` (both included).

        Batch partitions of any timeframe and the live files; per day, files in name order.

        Raises:
            QuarantineFileError: A file holds a line that is not a record.
        """
        records: list[QuarantineRecord] = []
        for day in days_between(start, end):
            folder = quarantine_month_dir(self._data_dir, symbol, day, exchange)
            if folder.is_dir():
                for path in sorted(folder.glob(f"*_{day:%Y%m%d}.jsonl")):
                    records.extend(_read(path))
        return records

    def count(self, symbol: str, start: date, end: date, exchange: str | None = None) -> int:
        """Number of records :meth:`load` returns for the same arguments."""
        return len(self.load(symbol, start, end, exchange))


def _lines(records: Iterable[QuarantineRecord]) -> bytes:
    return "".join(f"{r.to_json()}\n" for r in records).encode("ascii")


def _read(path: Path) -> list[QuarantineRecord]:
    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            records.append(QuarantineRecord.from_json(line.decode("ascii")))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise QuarantineFileError(
                f"{path}:{number}: not a quarantine record ({exc}); fix or move the file."
            ) from None
    return records


def _same(old: Sequence[QuarantineRecord], new: Sequence[QuarantineRecord]) -> bool:
    """Equal records apart from ``detected_at`` (compared as stored, i.e. after JSON)."""
    if len(old) != len(new):
        return False
    return all(
        replace(a, detected_at="") == replace(QuarantineRecord.from_json(b.to_json()),
                                               detected_at="")
        for a, b in zip(old, new, strict=True)
    )
