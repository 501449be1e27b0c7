"""Candle timeframes and the time arithmetic that goes with them (UTC, millisecond epoch)."""

from __future__ import annotations

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
