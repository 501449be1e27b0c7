"""Self-healing: re-fetch partitions whose candles have gaps, a bounded number of times.

The sensor reads the catalog for recent ``ohlcv_1m`` partitions that still miss minutes and
launches a re-fetch of each, at most ``MAX_TRIES`` times (the count lives in the sensor's
cursor). A gap that survives every try is real (an exchange outage, say): the sensor raises an
alert once and leaves the partition alone.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from helios_pipeline.defs.partitions import SymbolDay
from helios_pipeline.defs.resources import AlertsResource, ExchangeResource, StorageResource
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.quality.alerts import Alert, AlertManager
from helios_pipeline.storage.metadata import MetadataStore

MAX_TRIES = 3
LOOKBACK_DAYS = 7
GAVE_UP = -1


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
                    f"gaps, at most {MAX_TRIES} times each; then alerts and stops.",
    )
    def self_healing_sensor(
        context: dg.SensorEvaluationContext, exchange: ExchangeResource,
        storage: StorageResource, alerts: AlertsResource,
    ) -> dg.SensorResult:
        tries: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        since = datetime.now(tz=UTC) - timedelta(days=LOOKBACK_DAYS)
        requests, exhausted = [], []
        for partition in gappy_partitions(storage.metadata(), exchange.exchange_id, since):
            key = str(partition.key)
            done = tries.get(key, 0)
            if done == GAVE_UP:
                continue
            if done >= MAX_TRIES:
                exhausted.append(partition)
                tries[key] = GAVE_UP
                continue
            tries[key] = done + 1
            requests.append(dg.RunRequest(run_key=f"{key}#try{done + 1}", partition_key=key,
                                          tags={"helios/self_heal_try": str(done + 1)}))
        if exhausted:
            asyncio.run(_alert(alerts.manager(), exhausted))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(tries, sort_keys=True))

    return self_healing_sensor


async def _alert(manager: AlertManager, partitions: list[SymbolDay]) -> None:
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
