"""``influx_mirror``: the last 30 days of candles and hot-tier ticks mirrored to InfluxDB.

Registered by ``build_defs`` only when ``HELIOS_INFLUX_URL`` is set (the mirror is optional).
Every five minutes a run queues what is new (catalogued candle partitions whose content was not
queued yet, hot-tier ticks after the last one queued) in the durable outbox under
``<data_dir>/influx_outbox`` and sends the queue. InfluxDB being down never fails the run: the
batches stay queued for the next one, and the ``influx_mirror_outbox_check`` warns while they
wait.
"""

import time
from collections.abc import Iterator, Sequence

import dagster as dg
import redis

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES
from helios_pipeline.defs.cross import REFERENCE_OHLCV_1M
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.realtime import RealtimeMarketDataResource
from helios_pipeline.defs.resources import StorageResource
from helios_pipeline.domain.ticks import TickKind
from helios_pipeline.settings import Settings
from helios_pipeline.storage.influx.feed import QueuedReport, queue_candles, queue_ticks
from helios_pipeline.storage.influx.mirror import FlushReport, InfluxMirror, outbox_dir

INFLUX_MIRROR = dg.AssetKey("influx_mirror")
INFLUX_MIRROR_JOB = "influx_mirror_job"
OUTBOX_CHECK = "influx_mirror_outbox_check"


class InfluxMirrorResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the mirror writes: InfluxDB's URL and database, the data root of the outbox."""

    url: str
    database: str = "helios"
    data_dir: str = "local/data"

    def mirror(self) -> InfluxMirror:
        """A mirror over the data root's outbox (close it when done)."""
        return InfluxMirror(self.url, self.database, outbox_dir(self.data_dir))


def build_influx_defs(settings: Settings) -> dg.Definitions:
    """The mirror asset, its job and five-minute schedule, and its resource.

    Raises:
        ValueError: ``settings.influx_url`` is not set (``build_defs`` only calls this when it is).
    """
    if settings.influx_url is None:
        raise ValueError("HELIOS_INFLUX_URL is not set: the InfluxDB mirror has nowhere to write.")
    asset = _build_mirror_asset(settings.symbols, settings.stream_kinds)
    job = dg.define_asset_job(INFLUX_MIRROR_JOB, selection=[asset])
    schedule = dg.ScheduleDefinition(
        name="influx_mirror_schedule", job=job, cron_schedule="*/5 * * * *",
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every 5 minutes: queue new candles and ticks for InfluxDB and send them.")
    resource = InfluxMirrorResource(url=settings.influx_url, database=settings.influx_database,
                                    data_dir=str(settings.data_dir))
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule],
                          resources={"influx": resource})


def _build_mirror_asset(symbols: Sequence[str], kinds: Sequence[TickKind]) -> dg.AssetsDefinition:
    candles = [OHLCV_1M, *(candle_key(tf) for tf in DERIVED_TIMEFRAMES), REFERENCE_OHLCV_1M]

    @dg.asset(
        key=INFLUX_MIRROR, deps=candles, group_name="warm_tier", kinds={"influxdb"},
        check_specs=[dg.AssetCheckSpec(
            OUTBOX_CHECK, asset=INFLUX_MIRROR,
            description="Nothing waits in the outbox and InfluxDB refused no batch.")],
        description="Candles (all timeframes, last 30 days) and hot-tier ticks mirrored to "
                    "InfluxDB (HELIOS_INFLUX_URL) through a durable outbox; retention 30 days.",
    )
    def influx_mirror(
        context: dg.AssetExecutionContext, influx: InfluxMirrorResource,
        storage: StorageResource, realtime: RealtimeMarketDataResource,
    ) -> Iterator[dg.MaterializeResult[None]]:
        now_ms = time.time_ns() // 1_000_000
        mirror = influx.mirror()
        try:
            queued_candles = queue_candles(mirror, storage.metadata(), now_ms)
            queued_ticks = _queue_ticks(context, mirror, realtime, symbols, kinds, now_ms)
            flushed = mirror.flush()
            rejected = len(mirror.outbox.rejected())
        finally:
            mirror.close()
        if flushed.error is not None:
            context.log.warning(f"{flushed.error} ({flushed.pending_points} points wait in "
                                f"{mirror.outbox.path} for the next run)")
        yield dg.MaterializeResult(
            metadata=_metadata(queued_candles, queued_ticks, flushed, rejected),
            check_results=[_outbox_check(flushed, rejected)])

    return influx_mirror


def _queue_ticks(context: dg.AssetExecutionContext, mirror: InfluxMirror,
                 realtime: RealtimeMarketDataResource, symbols: Sequence[str],
                 kinds: Sequence[TickKind], now_ms: int) -> QueuedReport | None:
    """Queue new hot-tier ticks; ``None`` (and a warning) when Redis cannot be read."""
    hot = realtime.store()
    try:
        return queue_ticks(mirror, hot, symbols, kinds, now_ms)
    except redis.RedisError as exc:
        context.log.warning(f"Hot tier at {realtime.redis_url} unreadable ({exc}); its ticks "
                            "are mirrored by a later run, the candles now.")
        return None
    finally:
        hot.close()


def _metadata(candles: QueuedReport, ticks: QueuedReport | None, flushed: FlushReport,
              rejected: int) -> dict[str, int | str]:
    return {
        "queued_partitions": candles.units,
        "queued_candle_points": candles.points,
        "queued_tick_points": -1 if ticks is None else ticks.points,
        "sent_points": flushed.sent_points,
        "dropped_older_than_retention": flushed.dropped_old,
        "pending_batches": flushed.pending_batches,
        "pending_points": flushed.pending_points,
        "rejected_batches_total": rejected,
        "influx_error": flushed.error or "",
    }


def _outbox_check(flushed: FlushReport, rejected: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=OUTBOX_CHECK, passed=flushed.pending_batches == 0 and rejected == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"pending_points": flushed.pending_points, "rejected_batches": rejected,
                  "influx_error": flushed.error or ""},
        description=flushed.error or ("Refused batches are in the outbox's rejected table."
                                      if rejected else "Outbox empty: InfluxDB holds everything."))
