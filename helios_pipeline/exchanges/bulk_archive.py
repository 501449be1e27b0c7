"""An exchange's public bulk archive of 1m klines: download, verify, parse.

Binance publishes every closed month and day of 1m klines per symbol at
``https://data.binance.vision`` (``/data/spot/monthly/klines/{SYMBOL}/1m/{SYMBOL}-1m-YYYY-MM.zip``,
``/data/spot/daily/klines/...-YYYY-MM-DD.zip``), each beside a ``.CHECKSUM`` file holding the
zip's SHA-256. :class:`BulkArchiveClient` downloads a file, verifies it against its checksum and
parses the CSV inside into the same Arrow table (``EXCHANGE_SCHEMA``)
that ``ExchangeClient.fetch_candles`` builds from ``/api/v3/klines`` pages: decimals exact, open
times in milliseconds. The files' quirks are handled: microsecond timestamps (from 2025 on), an
optional header row, outage minutes simply absent. Anything else raises an :class:`ArchiveError`
naming the file, so the caller can take that period from REST instead.

The archive is another host than the API: downloads spend none of the API's request weight.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Self

import aiohttp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from helios_pipeline.domain.columns import (
    CLOSE,
    CLOSE_TIME,
    HIGH,
    LOW,
    OHLCV_COLUMNS,
    OPEN,
    QUOTE_VOLUME,
    TAKER_BUY_QUOTE_VOLUME,
    TAKER_BUY_VOLUME,
    TIMESTAMP,
    TRADES,
    VOLUME,
)
from helios_pipeline.domain.schema import DECIMAL_TYPE, EXCHANGE_SCHEMA, TIMESTAMP_TYPE
from helios_pipeline.exchanges.config import DEFAULT_BULK_URLS
from helios_pipeline.exchanges.errors import ExchangeError

__all__ = ["DEFAULT_BULK_URLS", "ArchiveError", "ArchiveFile", "ArchiveMissingError",
           "BulkArchiveClient", "archive_url", "parse_archive"]

_CSV_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
_DECIMALS = {OPEN: "open", HIGH: "high", LOW: "low", CLOSE: "close", VOLUME: "volume",
             QUOTE_VOLUME: "quote_volume", TAKER_BUY_VOLUME: "taker_buy_volume",
             TAKER_BUY_QUOTE_VOLUME: "taker_buy_quote_volume"}
_MICROSECONDS = 10**14  # a 2025 open time is ~1.7e12 in ms and ~1.7e15 in us
_DOWNLOADS_IN_FLIGHT = 8


class ArchiveError(ExchangeError):
    """An archive file cannot be used; the message names the file and what was wrong.

    Attributes:
        url: The file's address.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"Bulk archive file {url}: {problem}")


class ArchiveMissingError(ArchiveError):
    """The archive has no such file (not published yet, or no trading in the period)."""


@dataclass(frozen=True)
class ArchiveFile:
    """One verified, parsed archive file.

    Attributes:
        url: Where it was downloaded from.
        sha256: Its verified SHA-256 (hex).
        table: Its klines (:data:`EXCHANGE_SCHEMA`), sorted by open time, one per open time.
    """

    url: str
    sha256: str
    table: pa.Table

    @property
    def name(self) -> str:
        """The file name (``BTCUSDT-1m-2024-03.zip``)."""
        return self.url.rsplit("/", 1)[-1]


def archive_url(base_url: str, symbol_id: str, first: date, monthly: bool) -> str:
    """Address of the 1m kline file of ``symbol_id`` for the month or day starting ``first``."""
    period = "monthly" if monthly else "daily"
    stamp = f"{first:%Y-%m}" if monthly else f"{first:%Y-%m-%d}"
    return (f"{base_url.rstrip('/')}/data/spot/{period}/klines/{symbol_id}/1m/"
            f"{symbol_id}-1m-{stamp}.zip")


def parse_archive(url: str, content: bytes) -> pa.Table:
    """The klines of a downloaded zip (already verified) as an :data:`EXCHANGE_SCHEMA` table.

    Raises:
        ArchiveError: Not a readable zip holding one CSV, or a row that is not a kline.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.namelist()
            if len(members) != 1:
                raise ArchiveError(url, f"expected one CSV in the zip, found {members}.")
            data = archive.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ArchiveError(url, f"not a readable zip ({exc}); it may be truncated.") from None
    if not data.strip():
        return EXCHANGE_SCHEMA.empty_table()
    header = not data[:1].isdigit()
    try:
        raw = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=list(_CSV_COLUMNS),
                                            skip_rows=1 if header else 0),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(_CSV_COLUMNS, pa.string())),
        )
        return _kline_table(raw)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ArchiveError(url, f"a row is not a 12-column kline ({exc}).") from None


def _milliseconds(column: pa.ChunkedArray) -> pa.Array:
    """Integer times in milliseconds; microsecond values (the archive from 2025) divided down."""
    values = column.cast(pa.int64())
    micro = pc.greater(values, _MICROSECONDS)
    return pc.if_else(micro, pc.divide(values, 1000), values)


def _kline_table(raw: pa.Table) -> pa.Table:
    """Typed klines from the CSV's string columns, sorted, the first row per open time kept."""
    arrays = {name: raw.column(csv_name).cast(DECIMAL_TYPE)
              for name, csv_name in _DECIMALS.items()}
    opens = _milliseconds(raw.column("open_time"))
    arrays[TIMESTAMP] = opens.cast(TIMESTAMP_TYPE)
    arrays[CLOSE_TIME] = _milliseconds(raw.column("close_time"))
    arrays[TRADES] = raw.column("count").cast(pa.int64())
    table = pa.Table.from_arrays([arrays[name] for name in OHLCV_COLUMNS], schema=EXCHANGE_SCHEMA)
    times = opens.to_numpy()
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    first_of_each = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    return table.take(pa.array(order[first_of_each]))


class BulkArchiveClient:
    """Downloads and verifies archive files (use as ``async with``).

    Args:
        base_url: The archive's address (``https://data.binance.vision`` or the simulator).
        timeout_s: Per-download timeout.
        in_flight: Downloads at once.
    """

    def __init__(self, base_url: str, timeout_s: float = 60.0,
                 in_flight: int = _DOWNLOADS_IN_FLIGHT) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._gate = asyncio.Semaphore(in_flight)
        self._session: aiohttp.ClientSession | None = None
        self.downloaded_bytes = 0

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, symbol_id: str, first: date, monthly: bool) -> ArchiveFile:
        """Download, verify and parse one month's or day's file.

        Raises:
            ArchiveMissingError: The archive has no such file (404).
            ArchiveError: Download failed, checksum mismatch, truncated zip or malformed row.
        """
        url = archive_url(self.base_url, symbol_id, first, monthly)
        async with self._gate:
            content = await self._get(url)
            expected = (await self._get(url + ".CHECKSUM")).decode("ascii", "replace").split()
        actual = hashlib.sha256(content).hexdigest()
        if not expected or expected[0].lower() != actual:
            shown = expected[0] if expected else "nothing"
            raise ArchiveError(url, f"checksum mismatch: the .CHECKSUM says {shown}, the "
                                    f"downloaded {len(content)} bytes hash to {actual}.")
        table = await asyncio.to_thread(parse_archive, url, content)
        return ArchiveFile(url, actual, table)

    async def _get(self, url: str) -> bytes:
        if self._session is None:
            raise RuntimeError("BulkArchiveClient is used outside 'async with'.")
        try:
            async with self._session.get(url) as response:
                if response.status == 404:
                    raise ArchiveMissingError(url, "not published (404).")
                if response.status != 200:
                    raise ArchiveError(url, f"HTTP {response.status} {response.reason}.")
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ArchiveError(url, f"download failed ({exc!r}).") from None
        self.downloaded_bytes += len(body)
        return body
