"""What a partition's materialisation costs in Dagster: events from an op vs a ranged output.

Issue 9's backfill speed is bound by Dagster's per-event cost (docs/batch.md, "Where the time
goes"). ``ohlcv_backfill_job`` yields an ``AssetMaterialization`` per partition from its op;
Dagster stores each on its own. Dagster batches only the materialisations of one output over a
partition range (``DAGSTER_EVENT_BATCH_SIZE``; PostgreSQL stores such a batch in one insert).
This measures both for 300 daily partitions of one asset, with the same per-partition metadata,
on SQLite and on PostgreSQL (when 127.0.0.1:5432 answers), in the same run:

* baseline: an op yielding 300 ``AssetMaterialization`` events (the backfill job's way);
* ranged: one run of the asset over the 300 partitions, ``context.add_asset_metadata(...,
  partition_key=...)`` per partition and one ``MaterializeResult``, with and without
  ``DAGSTER_EVENT_BATCH_SIZE=500``. ``execute_in_process`` takes no partition range, so the
  run carries Dagster's partition-range tags, as the backfill daemon sets them for a ranged run
  (product code never writes them by hand).

Run from the project root: ``python -m benchmarks.bench_dagster_events`` (about a minute).
"""

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from benchmarks._common import report
from benchmarks.bench_backfill import postgres_database

PARTITIONS = 300
DAYS = dg.DailyPartitionsDefinition(start_date="2023-01-01", end_date="2023-12-31")
KEYS = DAYS.get_partition_keys()[:PARTITIONS]


def metadata(key: str) -> dict[str, dg.MetadataValue]:
    return {"rows": dg.MetadataValue.int(1440), "missing_minutes": dg.MetadataValue.int(0),
            "path": dg.MetadataValue.path(f"market_data/BTCUSDT/{key}.parquet")}


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def candles(context: dg.AssetExecutionContext) -> dg.MaterializeResult[None]:
    for key in context.partition_keys:
        context.add_asset_metadata(metadata(key), partition_key=key)
    return dg.MaterializeResult()


@dg.op(out={})
def yield_events() -> Iterator[dg.AssetMaterialization]:
    for key in KEYS:
        yield dg.AssetMaterialization(asset_key="candles", partition=key, metadata=metadata(key))


DEFS = dg.Definitions(assets=[candles], jobs=[
    dg.GraphDefinition(name="events", node_defs=[yield_events]).to_job(name="events")])


def timed(postgres_url: str | None, run: Callable[[dg.DagsterInstance], object],
          batch_size: int = 0) -> float:
    """Seconds of ``run`` in a new instance; checks every partition was materialised."""
    with tempfile.TemporaryDirectory() as home:
        storage = (f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n" if postgres_url
                   else f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
        (Path(home) / "dagster.yaml").write_text(f"{storage}telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_EVENT_BATCH_SIZE"] = str(batch_size)
        try:
            with dg.DagsterInstance.from_config(home) as instance:
                instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600,
                                                max_overflow=4)
                began = time.perf_counter()
                run(instance)
                elapsed = time.perf_counter() - began
                stored = instance.get_materialized_partitions(dg.AssetKey("candles"))
        finally:
            os.environ.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    assert len(stored) == PARTITIONS, len(stored)
    return elapsed


QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def events(instance: dg.DagsterInstance) -> None:
    DEFS.resolve_job_def("events").execute_in_process(instance=instance, run_config=QUIET)


def ranged(instance: dg.DagsterInstance) -> None:
    DEFS.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": KEYS[0],
              "dagster/asset_partition_range_end": KEYS[-1]})


def storage(name: str, postgres_url: str | None) -> None:
    per = 1000 / PARTITIONS
    base = timed(postgres_url, events)
    plain = timed(postgres_url, ranged)
    batched = timed(postgres_url, ranged, batch_size=500)
    report(f"{name}: a partition's materialisation, ranged output with per-partition metadata",
           plain * per, base * per, "ms", "one AssetMaterialization event per partition")
    report(f"{name}: same, DAGSTER_EVENT_BATCH_SIZE=500", batched * per, base * per, "ms",
           "one AssetMaterialization event per partition")


def main() -> None:
    storage("SQLite", None)
    with postgres_database() as url:
        if url is None:
            print("(PostgreSQL at 127.0.0.1:5432 not reachable: its variant was skipped)")
        else:
            storage("PostgreSQL", url)


if __name__ == "__main__":
    main()
