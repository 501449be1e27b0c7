"""A rejected row and the reasons it was rejected: the quarantine record every layer shares.

Validation creates these (``validation.outcome``, the realtime pipeline), ``storage.quarantine``
files them as JSON Lines, and quality reports read them back. :func:`jsonable` turns whatever
arrived (decimals, NaN, huge ints, nested payloads) into JSON without losing its text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from helios_pipeline.domain.timeframe import ms_to_datetime

_MAX_DEPTH = 32  # deeper raw payloads are kept as their repr
_MAX_INT_BITS = 1024  # larger ints are summarised (str() of a huge int is refused by Python)
_FIELDS = ("symbol", "kind", "timestamp_ms", "rules", "values", "raw", "source", "detected_at")


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
