"""COLD tier: one compacted Parquet file per exchange, symbol, timeframe and month.

:class:`CandleArchive` keeps closed months of candles under a root that is a local folder
(``{data_dir}/archive`` by default) or an object store (``HELIOS_ARCHIVE_URL``, e.g.
``s3://bucket/prefix``), written and read through a pyarrow filesystem, in hive-style folders so
pyarrow datasets and DuckDB can scan them as a table::

    {root}/ohlcv/exchange=binance/symbol=BTCUSDT/timeframe=1m/month=2024-05/ohlcv_1m_202405.parquet

A month file holds exactly the rows and columns of the month's daily files
(:data:`~helios_pipeline.domain.schema.OHLCV_SCHEMA`: ``decimal128(38, 18)`` prices, so no digit
is lost), sorted by open time, zstd-compressed, with statistics on every column. Its footer
metadata records which days it holds, the SHA-256 of each daily file it was built from (so
``as_of`` can tell which catalog version the archive holds) and the month's content hash
(:func:`table_hash`), which compaction compares with the daily files' before removing them.

For an S3-compatible store other than AWS, put the endpoint in the URL's query, as pyarrow reads
it: ``s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http``. Credentials come from
the usual ``AWS_*`` variables or files, or from the URL (``s3://KEY:SECRET@bucket/prefix``;
error messages mask them).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.schema import OHLCV_SCHEMA
from helios_pipeline.domain.symbols import to_storage_id
from helios_pipeline.domain.timeframe import Timeframe, day_start_ms

ARCHIVE = "archive"
_META_DAYS = b"helios.days"
_META_HASH = b"helios.content_hash"
_META_SOURCES = b"helios.source_hashes"

# Fixed writer options: the same month always gives the same bytes for one pyarrow version.
ARCHIVE_WRITE_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
    "use_dictionary": False,
    "version": "2.6",
    "store_schema": True,
    "row_group_size": 1 << 20,
}


class ArchiveError(RuntimeError):
    """An archive file cannot be written or read as a month of candles."""


def month_of(day: date) -> date:
    """The first day of ``day``'s month: how months are named throughout."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def table_hash(table: pa.Table) -> str:
    """SHA-256 (hex) of a candle table's content: the same rows and values give the same hash.

    Independent of how the table is chunked or which file format it came from: the rows are
    cast to :data:`OHLCV_SCHEMA`, combined and hashed as one Arrow IPC stream.
    """
    data = table.cast(OHLCV_SCHEMA).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, OHLCV_SCHEMA) as writer:
        if data.num_rows:
            writer.write_table(data, max_chunksize=data.num_rows)
    return hashlib.sha256(sink.getvalue()).hexdigest()


@dataclass(frozen=True, slots=True)
class ArchivedMonth:
    """One month file of the archive.

    Attributes:
        path: Where it lives, relative to the filesystem (``bucket/prefix/...`` on S3).
        rows: Candles in it.
        days: The days whose daily files it was built from.
        content_hash: :func:`table_hash` of its rows.
        source_hashes: Per day, the SHA-256 of the daily file's bytes (its catalog hash).
    """

    path: str
    rows: int
    days: tuple[date, ...]
    content_hash: str
    source_hashes: dict[date, str]


class CandleArchive:
    """Monthly candle files on a local disk or an object store.

    Args:
        url: ``s3://bucket/prefix?...``, ``file:///abs/path`` or a local folder path.
    """

    def __init__(self, url: str | Path) -> None:
        text = str(url)
        if not text:
            raise ArchiveError("The archive URL is empty: give a folder or s3://bucket/prefix.")
        try:
            if "://" in text:
                self.fs, root = pafs.FileSystem.from_uri(text)
            else:
                self.fs, root = pafs.LocalFileSystem(), str(Path(text).absolute())
        except (pa.ArrowInvalid, OSError) as exc:
            raise ArchiveError(f"Archive URL {_without_secret(text)!r} cannot be used: {exc}. "
                               "Give a folder or s3://bucket/prefix[?endpoint_override=...].",
                               ) from None
        self.url = text
        self.root = root.rstrip("/")
        self.local = self.fs.type_name == "local"

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> CandleArchive:
        """The archive ``url`` names, or ``{data_dir}/archive`` when it is empty or ``None``."""
        return cls(url or data_dir / ARCHIVE)

    def series_dir(self, exchange: str, symbol: str, timeframe: Timeframe) -> str:
        """Folder of a symbol's months of one timeframe (hive-style ``key=value`` folders)."""
        return (f"{self.root}/ohlcv/exchange={exchange}/symbol={to_storage_id(symbol)}/"
                f"timeframe={timeframe.value}")

    def month_dir(self, exchange: str, symbol: str, timeframe: Timeframe, month: date) -> str:
        """Folder of one month file."""
        return f"{self.series_dir(exchange, symbol, timeframe)}/month={month:%Y-%m}"

    def month_path(self, exchange: str, symbol: str, timeframe: Timeframe, month: date) -> str:
        """The month file (``month``: any day of it)."""
        month = month_of(month)
        return (f"{self.month_dir(exchange, symbol, timeframe, month)}/"
                f"ohlcv_{timeframe.value}_{month:%Y%m}.parquet")

    def write_month(self, exchange: str, symbol: str, timeframe: Timeframe, month: date,
                    table: pa.Table, source_hashes: dict[date, str]) -> ArchivedMonth:
        """Write (or replace) a month file from the rows of its daily files.

        Args:
            exchange: ccxt exchange id.
            symbol: ccxt unified symbol.
            timeframe: Candle length.
            month: Any day of the month.
            table: The month's candles (:data:`OHLCV_SCHEMA`), in any order.
            source_hashes: Per archived day, the SHA-256 of its daily file.

        Raises:
            ArchiveError: A row or a day lies outside the month.
        """
        month = month_of(month)
        days = tuple(sorted(source_hashes))
        if any(month_of(d) != month for d in days):
            raise ArchiveError(f"Days {days} are not all in {month:%Y-%m}.")
        data = table.cast(OHLCV_SCHEMA).sort_by(TIMESTAMP).combine_chunks()
        times = data.column(TIMESTAMP).cast(pa.int64())
        if data.num_rows and not (day_start_ms(month) <= times[0].as_py()
                                  and times[-1].as_py() < day_start_ms(next_month(month))):
            raise ArchiveError(f"{symbol} {timeframe.value}: rows outside {month:%Y-%m}.")
        digest = table_hash(data)
        meta = {_META_DAYS: json.dumps([d.isoformat() for d in days]).encode(),
                _META_HASH: digest.encode(),
                _META_SOURCES: json.dumps({d.isoformat(): h for d, h in source_hashes.items()},
                                          sort_keys=True).encode()}
        data = data.replace_schema_metadata({**(data.schema.metadata or {}), **meta})
        path = self.month_path(exchange, symbol, timeframe, month)
        self._write(path, data)
        return ArchivedMonth(path, data.num_rows, days, digest, dict(source_hashes))

    def info(self, exchange: str, symbol: str, timeframe: Timeframe, month: date
             ) -> ArchivedMonth | None:
        """What a month file holds (from its footer only), or ``None`` when there is none."""
        path = self.month_path(exchange, symbol, timeframe, month)
        try:
            with self.fs.open_input_file(path) as source:
                metadata = pq.read_metadata(source)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            raise ArchiveError(f"{path}: not a readable archive file ({exc}).") from None
        return _archived(path, metadata.num_rows, metadata.metadata)

    def read_month(self, exchange: str, symbol: str, timeframe: Timeframe, month: date
                   ) -> pa.Table | None:
        """A month's candles (:data:`OHLCV_SCHEMA`, sorted), or ``None`` when not archived."""
        found = self.read_month_info(exchange, symbol, timeframe, month)
        return None if found is None else found[0]

    def read_month_info(self, exchange: str, symbol: str, timeframe: Timeframe, month: date
                        ) -> tuple[pa.Table, ArchivedMonth] | None:
        """A month's candles and what the file records about them, or ``None``."""
        path = self.month_path(exchange, symbol, timeframe, month)
        try:
            # one known file: ParquetFile skips read_table's dataset discovery
            with self.fs.open_input_file(path) as source:
                table = pq.ParquetFile(source).read()
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            raise ArchiveError(f"{path}: not a readable archive file ({exc}).") from None
        info = _archived(path, table.num_rows, table.schema.metadata)
        table = table.replace_schema_metadata(None)
        if not table.schema.equals(OHLCV_SCHEMA):
            raise ArchiveError(f"{path}: its columns are not the candle schema.")
        return table, info

    def months(self, exchange: str, symbol: str, timeframe: Timeframe = Timeframe.M1
               ) -> list[date]:
        """Archived months of a symbol and timeframe, oldest first."""
        selector = pafs.FileSelector(self.series_dir(exchange, symbol, timeframe),
                                     allow_not_found=True)
        found = []
        for entry in self.fs.get_file_info(selector):
            name = entry.base_name
            if entry.type == pafs.FileType.Directory and name.startswith("month="):
                found.append(date.fromisoformat(f"{name[6:]}-01"))
        return sorted(found)

    def archived_days(self, exchange: str, symbol: str, timeframe: Timeframe,
                      months: list[date] | None = None) -> set[date]:
        """Days whose daily files the archive holds (of ``months``, default all)."""
        days: set[date] = set()
        for month in self.months(exchange, symbol, timeframe) if months is None else months:
            info = self.info(exchange, symbol, timeframe, month)
            if info is not None:
                days.update(info.days)
        return days

    def load_range(self, exchange: str, symbol: str, timeframe: Timeframe, start_ms: int,
                   end_ms: int) -> pa.Table:
        """Archived candles with open times in ``[start_ms, end_ms)``, sorted."""
        tables = []
        month = month_of(_day(start_ms))
        last = month_of(_day(max(start_ms, end_ms - 1)))
        while month <= last:
            table = self.read_month(exchange, symbol, timeframe, month)
            if table is not None:
                tables.append(table)
            month = next_month(month)
        if not tables:
            return OHLCV_SCHEMA.empty_table()
        table = pa.concat_tables(tables)
        times = table.column(TIMESTAMP).cast(pa.int64())
        lo = pc.greater_equal(times, start_ms)
        hi = pc.less(times, end_ms)
        return table.filter(pc.and_(lo, hi))

    def content_hash(self, exchange: str, symbol: str, timeframe: Timeframe, month: date
                     ) -> str | None:
        """The recorded content hash of a month file, or ``None`` when not archived."""
        info = self.info(exchange, symbol, timeframe, month)
        return None if info is None else info.content_hash

    def delete_month(self, exchange: str, symbol: str, timeframe: Timeframe, month: date) -> None:
        """Remove a month file (nothing happens when there is none)."""
        path = self.month_path(exchange, symbol, timeframe, month)
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            self.fs.delete_file(path)

    def _write(self, path: str, table: pa.Table) -> None:
        """Write ``table`` to ``path`` so that a reader never sees half a file.

        Local disks: a temporary name, then a rename. Object stores: one PUT (atomic there).
        """
        folder = path.rsplit("/", 1)[0]
        self.fs.create_dir(folder, recursive=True)
        target = f"{folder}/.{uuid.uuid4().hex}.tmp" if self.local else path
        try:
            with self.fs.open_output_stream(target) as sink:
                pq.write_table(table, sink, **ARCHIVE_WRITE_OPTIONS)
            if self.local:
                self.fs.move(target, path)
        except BaseException:
            if self.local and self.fs.get_file_info(target).type == pafs.FileType.File:
                self.fs.delete_file(target)
            raise


def _archived(path: str, rows: int, meta: dict[bytes, bytes] | None) -> ArchivedMonth:
    """What a month file's footer metadata records."""
    meta = meta or {}
    if _META_HASH not in meta:
        raise ArchiveError(f"{path}: not written by CandleArchive (no helios metadata).")
    sources = json.loads(meta[_META_SOURCES])
    return ArchivedMonth(
        path, rows, tuple(date.fromisoformat(d) for d in json.loads(meta[_META_DAYS])),
        meta[_META_HASH].decode(), {date.fromisoformat(d): h for d, h in sources.items()})


def _without_secret(url: str) -> str:
    """``url`` with any ``user:password@`` part masked, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def _day(ms: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + ms // 86_400_000)
