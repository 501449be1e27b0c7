"""Candle timeframes and the time arithmetic that goes with them (UTC, millisecond epoch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum

MINUTE_MS = 60_000
DAY_MS = 86_400_000


class Timeframe(Enum):
    """A candle length the platform stores; the value is the ccxt/Binance interval string."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"

    @property
    def ms(self) -> int:
        """Length of one candle in milliseconds."""
        return _LENGTH_MS[self]

    @property
    def per_day(self) -> int:
        """Number of candles in one UTC day."""
        return DAY_MS // self.ms

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """Return the timeframe for ``text`` such as ``"1m"``.

        Raises:
            ValueError: ``text`` is not one of 1m 5m 15m 1h 4h 1d.
        """
        try:
            return cls(text)
        except ValueError:
            known = " ".join(t.value for t in cls)
            raise ValueError(f"Unknown timeframe {text!r}; expected one of: {known}.") from None

    def floor(self, ts_ms: int) -> int:
        """Open time of the candle that contains ``ts_ms``."""
        return ts_ms - ts_ms % self.ms


_LENGTH_MS = {
    Timeframe.M1: MINUTE_MS,
    Timeframe.M5: 5 * MINUTE_MS,
    Timeframe.M15: 15 * MINUTE_MS,
    Timeframe.H1: 60 * MINUTE_MS,
    Timeframe.H4: 240 * MINUTE_MS,
    Timeframe.D1: DAY_MS,
}


_UNIT_MS = {"m": MINUTE_MS, "h": 60 * MINUTE_MS, "d": DAY_MS, "w": 7 * DAY_MS}
# 1970-01-01 was a Thursday; exchanges (Binance, ccxt) start their weeks on Monday 00:00 UTC.
_MONDAY_OFFSET_MS = 4 * DAY_MS


@dataclass(frozen=True, slots=True)
class Bucket:
    """Any candle length ccxt names in minutes, hours, days or weeks (``30m``, ``2h``, ``1w``).

    The stored timeframes are :class:`Timeframe`; a bucket is what a query may ask for on top,
    aggregated from 1m candles. Buckets are aligned the way exchanges align them: to the Unix
    epoch, weeks to Monday 00:00 UTC.

    Attributes:
        name: The ccxt name, ``30m``.
        ms: Length in milliseconds.
        offset_ms: Where the buckets start relative to the epoch (Mondays for weeks).
    """

    name: str
    ms: int
    offset_ms: int = 0

    @classmethod
    def of(cls, timeframe: Timeframe) -> Bucket:
        """The bucket of a stored timeframe."""
        return cls(timeframe.value, timeframe.ms)

    @classmethod
    def parse(cls, text: str) -> Bucket:
        """``"30m"`` -> a 30-minute bucket.

        Raises:
            ValueError: ``text`` is not a positive count followed by m, h, d or w, or it is not
                a whole number of minutes that divides evenly into days (or weeks).
        """
        count, unit = text[:-1], text[-1:]
        if not count.isdigit() or int(count) <= 0 or unit not in _UNIT_MS:
            raise ValueError(f"Unknown timeframe {text!r}; expected a count and a unit, m, h, "
                             "d or w (1m, 5m, 30m, 2h, 1d, 1w).")
        ms = int(count) * _UNIT_MS[unit]
        if unit in "mh" and DAY_MS % ms:
            raise ValueError(f"Timeframe {text!r} does not divide a day into whole candles; use "
                             "one that does (1m, 2m, 3m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 4h, 6h, "
                             "8h, 12h) or days.")
        return cls(text, ms, _MONDAY_OFFSET_MS if unit == "w" else 0)

    def floor(self, ts_ms: int) -> int:
        """Open time of the bucket that contains ``ts_ms``."""
        return ts_ms - (ts_ms - self.offset_ms) % self.ms


def day_start_ms(day: date) -> int:
    """Millisecond epoch of 00:00 UTC on ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def ms_to_datetime(ts_ms: int) -> datetime:
    """Tz-aware UTC datetime for a millisecond epoch."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def datetime_to_ms(moment: datetime) -> int:
    """Millisecond epoch of a tz-aware datetime.

    Raises:
        ValueError: ``moment`` is naive; the platform never guesses a time zone.
    """
    if moment.tzinfo is None:
        raise ValueError(f"Naive datetime {moment.isoformat()}: give a tz-aware (UTC) datetime.")
    return int(moment.timestamp() * 1000)


def parse_day(text: str) -> date:
    """Parse ``YYYY-MM-DD``.

    Raises:
        ValueError: ``text`` is not a valid date in that form.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Bad date {text!r}: expected YYYY-MM-DD, e.g. 2024-01-31.") from None


def days_between(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    if end < start:
        raise ValueError(f"End date {end} is before start date {start}.")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
