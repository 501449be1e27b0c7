"""The InfluxDB mirror: queue candles and ticks durably, send them when InfluxDB answers.

:meth:`InfluxMirror.write_candles` and :meth:`InfluxMirror.write_ticks` only build line protocol
and commit it to the on-disk outbox: they never touch the network, so a slow or absent InfluxDB
cannot block or fail the local write path. :meth:`InfluxMirror.flush` sends the queue oldest
first and stops at the first batch InfluxDB cannot take right now; the rest waits for the next
flush. Nothing here raises because InfluxDB is down: the :class:`FlushReport` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.influx.lines import (
    CANDLE_PRECISION,
    TICK_PRECISION,
    candle_lines,
    candle_table_lines,
    tick_lines,
)
from helios_pipeline.storage.influx.outbox import Batch, Outbox
from helios_pipeline.storage.influx.v1api import (
    DEFAULT_RETENTION,
    DatabaseNotFoundError,
    InfluxRejectedError,
    InfluxUnavailableError,
    InfluxV1Client,
)

OUTBOX_DIR = "influx_outbox"
DEFAULT_BATCH_POINTS = 5000


@dataclass(frozen=True, slots=True)
class FlushReport:
    """Outcome of one :meth:`InfluxMirror.flush`.

    Attributes:
        sent_batches: Batches InfluxDB took.
        sent_points: Points in them.
        dropped_old: Points InfluxDB dropped as older than the retention window.
        rejected_batches: Batches InfluxDB refused, moved aside (see ``Outbox.rejected``).
        pending_batches: Batches still queued (InfluxDB unavailable part-way, or nothing left).
        pending_points: Points in them.
        error: Why the flush stopped early (``None`` when the queue was emptied).
    """

    sent_batches: int
    sent_points: int
    dropped_old: int
    rejected_batches: int
    pending_batches: int
    pending_points: int
    error: str | None


def outbox_dir(data_dir: Path | str) -> Path:
    """The mirror's outbox folder under a data root: ``<data_dir>/influx_outbox``."""
    return Path(data_dir) / OUTBOX_DIR


class InfluxMirror:
    """Candles and ticks to one InfluxDB database through a durable outbox.

    Args:
        url: InfluxDB base URL (``HELIOS_INFLUX_URL``).
        database: Database name (``HELIOS_INFLUX_DATABASE``); created on first send with a
            default retention policy of ``retention``.
        outbox: Folder of the outbox (usually :func:`outbox_dir` of the data root).
        retention: How long InfluxDB keeps points (InfluxQL duration, default ``30d``).
        timeout_s: Per-request timeout when sending.
        batch_points: Lines per queued batch (one ``/write`` request each).
    """

    def __init__(self, url: str, database: str, outbox: Path | str, *,
                 retention: str = DEFAULT_RETENTION, timeout_s: float = 5.0,
                 batch_points: int = DEFAULT_BATCH_POINTS) -> None:
        self.client = InfluxV1Client(url, timeout_s)
        self.database = database
        self.retention = retention
        self.outbox = Outbox(outbox)
        self.batch_points = batch_points
        self._database_ready = False

    def write_candles(self, exchange: str, candles: Iterable[OHLCVData],
                      cursors: Mapping[str, str] | None = None) -> int:
        """Queue candles of ``exchange`` (measurement ``ohlcv``); returns the points queued.

        Args:
            exchange: ccxt exchange id (tag ``exchange``).
            candles: The candles.
            cursors: Feed cursors to set in the same transaction (see ``Outbox.append``).
        """
        return self._queue_candles(candle_lines(exchange, list(candles)), cursors)

    def write_candle_table(self, exchange: str, symbol: str, timeframe: Timeframe,
                           table: pa.Table, cursors: Mapping[str, str] | None = None) -> int:
        """:meth:`write_candles` of one series as a table (``OHLCV_SCHEMA``, e.g. a partition)."""
        return self._queue_candles(candle_table_lines(exchange, symbol, timeframe, table),
                                   cursors)

    def _queue_candles(self, lines: list[str], cursors: Mapping[str, str] | None) -> int:
        self.outbox.append(CANDLE_PRECISION, lines, self.batch_points, cursors)
        return len(lines)

    def write_ticks(self, ticks: Iterable[Tick],
                    cursors: Mapping[str, str] | None = None) -> int:
        """Queue hot-tier ticks (measurement = their kind); returns the points queued."""
        lines = tick_lines(ticks)
        self.outbox.append(TICK_PRECISION, lines, self.batch_points, cursors)
        return len(lines)

    def flush(self, max_batches: int | None = None) -> FlushReport:
        """Send queued batches oldest first until the queue is empty or InfluxDB cannot take one.

        Args:
            max_batches: Send at most this many (``None``: all).
        """
        sent = points = dropped = rejected = 0
        error: str | None = None
        while max_batches is None or sent + rejected < max_batches:
            batch = self.outbox.peek()
            if batch is None:
                break
            try:
                dropped += self._send(batch)
            except InfluxUnavailableError as exc:
                error = str(exc)
                break
            except InfluxRejectedError as exc:
                self.outbox.reject(batch, str(exc))
                rejected += 1
                continue
            self.outbox.remove(batch)
            sent += 1
            points += batch.points
        pending_batches, pending_points = self.outbox.pending()
        return FlushReport(sent, points, dropped, rejected, pending_batches, pending_points, error)

    def close(self) -> None:
        """Close the HTTP connection."""
        self.client.close()

    def _send(self, batch: Batch) -> int:
        if not self._database_ready:
            self.client.ensure_database(self.database, self.retention)
            self._database_ready = True
        try:
            outcome = self.client.write(self.database, batch.body, batch.precision)
        except DatabaseNotFoundError:
            # A new or wiped server: create the database again, then resend once.
            self.client.ensure_database(self.database, self.retention)
            outcome = self.client.write(self.database, batch.body, batch.precision)
        return outcome.dropped_old
