"""The simulated Binance bulk archive (``data.binance.vision``): zipped 1m kline CSVs per period.

Layout, as on the real archive::

    /data/spot/monthly/klines/{SYMBOL}/1m/{SYMBOL}-1m-{YYYY}-{MM}.zip
    /data/spot/daily/klines/{SYMBOL}/1m/{SYMBOL}-1m-{YYYY}-{MM}-{DD}.zip
    ... and the same names + ``.CHECKSUM`` (``<sha256>  <name>`` and a newline)

A file's rows are the klines ``/api/v3/klines`` serves for the same minutes (recorded files for
replayed symbols, the seeded market for the others, data faults included), so the archive and
REST paths see the same candles. Like the real archive, files of days from 2025-01-01 on carry
microsecond timestamps and none has a header row. A period is published once it has closed by
the market clock; earlier, and for periods without a single kline, the answer is 404.

Faults are request faults of the venue's spec (``faults``), decided on the ``.zip`` request (use
``path=`` to aim them at one file): ``archive_404`` (not found), ``archive_checksum`` (a served
file whose content differs from its published checksum), ``truncated`` (the first half of the
zip), ``archive_header`` (a header row first), ``archive_us`` (microsecond timestamps whatever
the date), ``archive_drift`` (every volume doubled, checksum consistent: only a comparison with
REST notices). The ``.CHECKSUM`` of a file describes the variant last served for that name (the
true content for ``archive_checksum``), so header and microsecond variants verify.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, day_start_ms
from helios_pipeline.sim.market.feed import MarketFeed, PatchLookup

ARCHIVE_PREFIX = "/data/spot"
HEADER = (b"open_time,open,high,low,close,volume,close_time,quote_volume,count,"
          b"taker_buy_volume,taker_buy_quote_volume,ignore")
MICROSECONDS_FROM = date(2025, 1, 1)
"""The real archive's files switched to microsecond timestamps on this day."""

_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-1m-(?P<year>\d{4})-(?P<month>\d{2})"
                   r"(?:-(?P<day>\d{2}))?\.zip$")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same content gives the same zip bytes
_CACHE_FILES = 64


class ArchiveNotFoundError(LookupError):
    """No such archive file (malformed name, wrong symbol, not published yet, no klines)."""


@dataclass(frozen=True)
class ArchivePeriod:
    """The UTC days one archive file covers."""

    symbol: str
    first: date
    last: date
    name: str  # SYMBOL-1m-YYYY-MM[-DD].zip

    @property
    def start_ms(self) -> int:
        """Open time of the period's first minute."""
        return day_start_ms(self.first)

    @property
    def end_ms(self) -> int:
        """End (exclusive) of the period's last minute."""
        return day_start_ms(self.last) + DAY_MS


def parse_name(name: str, monthly: bool) -> ArchivePeriod:
    """The period of an archive file name.

    Raises:
        ArchiveNotFoundError: The name is not ``SYMBOL-1m-YYYY-MM.zip`` (monthly) or
            ``SYMBOL-1m-YYYY-MM-DD.zip`` (daily), or names no real date.
    """
    match = _NAME.match(name)
    if match is None or bool(match["day"]) == monthly:
        raise ArchiveNotFoundError(name)
    year, month = int(match["year"]), int(match["month"])
    try:
        if monthly:
            first = date(year, month, 1)
            last = date(year, month, calendar.monthrange(year, month)[1])
        else:
            first = last = date(year, month, int(match["day"]))
    except ValueError:
        raise ArchiveNotFoundError(name) from None
    return ArchivePeriod(match["symbol"], first, last, name)


def _micro(line: bytes) -> bytes:
    """A millisecond CSV line with microsecond open and close times (the archive from 2025)."""
    fields = line.split(b",")
    fields[0] = b"%d" % (int(fields[0]) * 1000)
    fields[6] = b"%d" % (int(fields[6]) * 1000 + 999)
    return b",".join(fields)


def _doubled_volume(line: bytes) -> bytes:
    fields = line.split(b",")
    fields[5] = str(Decimal(fields[5].decode()) * 2).encode()
    return b",".join(fields)


def _zipped(csv_name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(csv_name, _ZIP_TIME), content,
                         compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


class BulkArchive:
    """Builds the archive's files from a market feed and remembers what it served.

    Args:
        feed: The feed ``/api/v3/klines`` serves from.
        now_ms: Market clock (what has closed).
        patches: Data-fault lookup of the venue (the same one REST applies).
    """

    def __init__(self, feed: MarketFeed, now_ms: Callable[[], int],
                 patches: Callable[[], PatchLookup]) -> None:
        self.feed = feed
        self.now_ms = now_ms
        self.patches = patches
        self._lines: OrderedDict[str, list[bytes]] = OrderedDict()
        self._checksums: dict[str, str] = {}

    def lines(self, period: ArchivePeriod) -> list[bytes]:
        """The CSV lines of a published file, in millisecond form, in order.

        Raises:
            ArchiveNotFoundError: The period has not closed yet or has no klines.
        """
        now = self.now_ms()
        if period.end_ms > now:
            raise ArchiveNotFoundError(period.name)
        cached = self._lines.get(period.name)
        if cached is None:
            lookup = self.patches()
            rows = [row for day in range(period.start_ms // DAY_MS, period.end_ms // DAY_MS)
                    for row in self.feed.klines(period.symbol, MINUTE_MS, start_ms=day * DAY_MS,
                                                end_ms=(day + 1) * DAY_MS - 1,
                                                limit=DAY_MS // MINUTE_MS, now_ms=now,
                                                patches=lookup)]
            cached = [row[1:-1].replace(b'"', b"") for row in rows]  # [1,"2"] -> 1,2
            self._lines[period.name] = cached
            if len(self._lines) > _CACHE_FILES:
                self._lines.popitem(last=False)
        else:
            self._lines.move_to_end(period.name)
        if not cached:
            raise ArchiveNotFoundError(period.name)
        return cached

    def file(self, period: ArchivePeriod, variant: str | None = None) -> bytes:
        """The zip of ``period`` as served; ``variant`` is an archive fault kind or ``None``.

        Raises:
            ArchiveNotFoundError: Not published, or the ``archive_404`` variant.
        """
        if variant == "archive_404":
            raise ArchiveNotFoundError(period.name)
        lines = self.lines(period)
        micro = period.first >= MICROSECONDS_FROM or variant == "archive_us"
        body = [_micro(line) for line in lines] if micro else list(lines)
        if variant == "archive_drift":
            body = [_doubled_volume(line) for line in body]
        if variant == "archive_header":
            body = [HEADER, *body]
        csv_name = period.name.removesuffix(".zip") + ".csv"
        true_zip = _zipped(csv_name, b"\n".join(body) + b"\n")
        self._checksums[period.name] = hashlib.sha256(true_zip).hexdigest()
        if variant == "archive_checksum":  # other content under the published checksum
            return _zipped(csv_name, b"\n".join([*body, body[-1]]) + b"\n")
        return true_zip

    def checksum(self, period: ArchivePeriod) -> bytes:
        """``<sha256>  <name>`` and a newline for the file as last served (built if never).

        Raises:
            ArchiveNotFoundError: Not published.
        """
        digest = self._checksums.get(period.name)
        if digest is None:
            self.file(period)
            digest = self._checksums[period.name]
        return f"{digest}  {period.name}\n".encode()
