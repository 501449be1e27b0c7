"""Self-healing: re-fetch partitions whose candles have gaps, a bounded number of times.

The sensor reads the catalog for recent ``ohlcv_1m`` partitions that still miss minutes and
launches a re-fetch of each, one at a time per partition, at most ``MAX_TRIES`` times:

* a try counts once its run has finished, whatever the outcome: a materialisation, or a failed
  materialisation, of the partition after the try was requested. While it runs, nothing else
  is launched for that partition;
* a partition that heals leaves the count; if it is broken again later, counting starts afresh;
* before launching, the sensor asks the exchange for its markets: when it does not answer,
  nothing is launched (a re-fetch could only fail) and the tick is skipped with the reason,
  warned once per outage rather than turned into red runs;
* a gap that survives every try is real (an exchange outage, say): the sensor alerts once and
  leaves the partition alone until it heals.

The cursor is JSON: ``{"partitions": {key: {"since", "tries", "launched", "gave_up"}},
"unreachable": bool}`` (times as epoch seconds).
"""

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import AlertsResource, ExchangeResource, StorageResource
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.errors import ExchangeError
from helios_pipeline.quality.alerts import Alert, AlertManager
from helios_pipeline.storage.metadata import MetadataStore

MAX_TRIES = 3
LOOKBACK_DAYS = 7


@dataclass
class _Episode:
    """One partition's current run of gaps: since when, finished tries, the pending one."""

    since: float
    tries: int = 0
    launched: float | None = None
    gave_up: bool = False


def gappy_partitions(catalog: MetadataStore, exchange_id: str, since: datetime) -> list[SymbolDay]:
    """Recent 1m partitions whose latest version still misses minutes."""
    records = catalog.list_partitions(
        exchange=exchange_id, timeframe=Timeframe.M1, start=since.date(), end=None
    )
    return [SymbolDay(r.symbol, r.day) for r in records if r.missing_minutes > 0]


def build_self_healing_sensor(job_name: str) -> dg.SensorDefinition:
    """Sensor that re-fetches gappy partitions up to ``MAX_TRIES`` times, then alerts."""

    @dg.sensor(
        name="self_healing_sensor", job_name=job_name, minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Re-fetches ohlcv_1m partitions of the last {LOOKBACK_DAYS} days that have "
                    f"gaps, one at a time, at most {MAX_TRIES} finished tries each; then alerts. "
                    "Launches nothing while the exchange does not answer.",
    )
    def self_healing_sensor(
        context: dg.SensorEvaluationContext, exchange: ExchangeResource,
        storage: StorageResource, alerts: AlertsResource,
    ) -> dg.SensorResult | dg.SkipReason:
        state = json.loads(context.cursor) if context.cursor else {}
        episodes = {k: _Episode(**v) for k, v in state.get("partitions", {}).items()}
        since = datetime.now(tz=UTC) - timedelta(days=LOOKBACK_DAYS)
        gappy = {str(p.key): p for p in gappy_partitions(storage.metadata(),
                                                         exchange.exchange_id, since)}
        episodes = {k: e for k, e in episodes.items() if k in gappy}  # healed: count ends
        now = time.time()
        for key in gappy:
            episode = episodes.setdefault(key, _Episode(since=now))
            _count_finished(context.instance, key, episode)
        due = [key for key, e in episodes.items()
               if not e.gave_up and e.launched is None and e.tries < MAX_TRIES]
        exhausted = [key for key, e in episodes.items()
                     if not e.gave_up and e.launched is None and e.tries >= MAX_TRIES]
        for key in exhausted:
            episodes[key].gave_up = True
        if exhausted:
            asyncio.run(_alert(alerts.manager(), [gappy[k] for k in exhausted]))
        problem = asyncio.run(_unreachable(exchange)) if due else None
        cursor = {"partitions": {k: asdict(e) for k, e in episodes.items()},
                  "unreachable": problem is not None}
        if problem is not None:
            if not state.get("unreachable"):
                context.log.warning(f"Self-healing paused: {problem}")
            context.update_cursor(json.dumps(cursor, sort_keys=True))
            return dg.SkipReason(f"{len(due)} gappy partition(s) wait: {problem}")
        requests = []
        for key in due:
            episode = episodes[key]
            episode.launched = now
            requests.append(dg.RunRequest(run_key=f"{key}@{episode.since:.0f}#{episode.tries + 1}",
                                          partition_key=gappy[key].key))
        cursor["partitions"] = {k: asdict(e) for k, e in episodes.items()}
        if requests:
            storage.audit().record("refetch", exchange.exchange_id, reason="gaps",
                                   partitions=sorted(due), sensor="self_healing_sensor")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return self_healing_sensor


def _count_finished(instance: dg.DagsterInstance, key: str, episode: _Episode) -> None:
    """Count the pending try once its run has left a (failed) materialisation of the partition."""
    if episode.launched is None:
        return
    records = dg.AssetRecordsFilter(asset_key=OHLCV_1M, asset_partitions=[key],
                                    after_timestamp=episode.launched)
    finished = (instance.fetch_materializations(records, limit=1).records
                or instance.fetch_failed_materializations(records, limit=1).records)
    if finished:
        episode.tries += 1
        episode.launched = None


async def _unreachable(exchange: ExchangeResource) -> str | None:
    """Why the exchange cannot be reached now, or ``None`` when it answers."""
    try:
        async with exchange.client() as client:
            await client.load_markets()
    except ExchangeError as exc:
        return (f"{exchange.exchange_id} at {exchange.base_url or 'its own address'} does not "
                f"answer ({exc}); re-fetches resume once it does.")
    return None


async def _alert(manager: AlertManager, partitions: Sequence[SymbolDay]) -> None:
    await manager.send_all(
        Alert(
            severity="warning",
            title="Gap persists after re-fetching",
            message=f"{p.symbol} {p.day}: still missing minutes after {MAX_TRIES} re-fetches; "
                    "the exchange has no data for them. Recorded as a gap; no more retries.",
            symbol=p.symbol,
            rule="persistent_gap",
            value=float(MAX_TRIES),
            at=datetime.now(tz=UTC),
        )
        for p in partitions
    )
