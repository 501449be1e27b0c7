"""What the mirror sends: stored candle partitions and hot-tier ticks of the last 30 days.

:func:`queue_candles` walks the partition catalog (``storage.metadata``) for days inside the
window and queues each partition whose content the mirror has not queued yet: the outbox keeps
a cursor per partition holding the content hash it queued, set in the same transaction as the
batches, so a partition is queued once per content (a re-fetch that changed it is queued again
and overwrites its points in InfluxDB). Candles older than the window are left out: InfluxDB's
retention policy would drop them anyway.

:func:`queue_ticks` reads each hot-tier stream after the last ``seq`` it queued (a cursor per
stream), so ticks are queued once each. Both only queue; :meth:`InfluxMirror.flush` sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.domain.ticks import TickKind
from helios_pipeline.domain.timeframe import ms_to_datetime
from helios_pipeline.storage.candle_codec import read_table
from helios_pipeline.storage.catalog_rows import PartitionRecord
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.influx.mirror import InfluxMirror
from helios_pipeline.storage.metadata import MetadataStore

WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class QueuedReport:
    """What one feed pass queued.

    Attributes:
        units: Partitions (candles) or streams (ticks) that had something new.
        points: Points queued.
    """

    units: int
    points: int


def candle_cursor(record: PartitionRecord) -> str:
    """Cursor name of one partition: ``ohlcv/{exchange}/{symbol}/{timeframe}/{day}``."""
    return f"ohlcv/{record.exchange}/{record.symbol}/{record.timeframe.value}/{record.day}"


def queue_candles(mirror: InfluxMirror, catalog: MetadataStore, now_ms: int,
                  window_days: int = WINDOW_DAYS) -> QueuedReport:
    """Queue every catalogued partition of the last ``window_days`` not yet queued as it is.

    Args:
        mirror: Where to queue.
        catalog: The partition catalog of the data root.
        now_ms: Current time (ms epoch); the window is ``now - window_days`` to now.
        window_days: Days InfluxDB keeps.
    """
    since_ms = now_ms - window_days * 86_400_000
    first_day = ms_to_datetime(since_ms).date()
    done = mirror.outbox.cursors("ohlcv/")
    units = points = 0
    for record in catalog.list_partitions(start=first_day):
        cursor = candle_cursor(record)
        if done.get(cursor) == record.content_hash or not record.rows:
            continue
        table = read_table(record.path)
        recent = table.filter(pc.greater_equal(table.column(TIMESTAMP).cast(pa.int64()),
                                               since_ms))
        points += mirror.write_candle_table(record.exchange, normalize_symbol(record.symbol),
                                            record.timeframe, recent,
                                            {cursor: record.content_hash})
        units += 1
    return QueuedReport(units, points)


def queue_ticks(mirror: InfluxMirror, hot: HotStore, symbols: Sequence[str],
                kinds: Sequence[TickKind], now_ms: int,
                window_days: int = WINDOW_DAYS) -> QueuedReport:
    """Queue the hot tier's ticks of ``symbols`` x ``kinds`` that were not queued before.

    Args:
        mirror: Where to queue.
        hot: The hot tier (its exchange is the one read).
        symbols: ccxt unified symbols.
        kinds: Tick kinds (streams) to read.
        now_ms: Current time (ms epoch).
        window_days: Days InfluxDB keeps (older ticks are skipped).
    """
    units = points = 0
    oldest_ms = now_ms - window_days * 86_400_000
    for symbol in symbols:
        for kind in kinds:
            cursor = f"tick/{hot.exchange}/{symbol}/{kind}"
            last_seq = int(mirror.outbox.cursor(cursor) or 0)
            since_ms = max(last_seq // 1000, oldest_ms)
            ticks = [t for t in hot.recent(symbol, kind, since_ms) if t.seq > last_seq]
            if not ticks:
                continue
            points += mirror.write_ticks(ticks, {cursor: str(ticks[-1].seq)})
            units += 1
    return QueuedReport(units, points)

