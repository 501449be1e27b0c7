"""Dagster: ``ohlcv_1m_archive`` maps months to days, materialises, and the schedule moves tiers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import dagster as dg

from helios_pipeline.defs.archive import (
    OHLCV_1M_ARCHIVE,
    ArchiveResource,
    build_archive_asset,
    month_of_days,
    symbol_month_partitions,
)
from helios_pipeline.defs.build import build_defs
from helios_pipeline.defs.keys import OHLCV_1M
from helios_pipeline.defs.partitions import register_symbols, symbol_day_partitions
from helios_pipeline.defs.resources import StorageResource
from helios_pipeline.domain.timeframe import Timeframe, days_between
from helios_pipeline.settings import Settings
from helios_pipeline.storage.archive import CandleArchive
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline_tests.archive_data import day_table

FEBRUARY = days_between(date(2024, 2, 1), date(2024, 2, 29))


def test_the_archive_asset_loads_with_lineage_to_the_day_partitions(settings: Settings) -> None:
    defs = build_defs(settings)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert OHLCV_1M in graph.get(OHLCV_1M_ARCHIVE).parent_keys
    assert defs.resolve_job_def("ohlcv_archive_job") is not None
    months = symbol_month_partitions(settings.start_date)
    days = symbol_day_partitions(settings.start_date)
    with dg.instance_for_test() as instance:
        register_symbols(instance, ["BTC/USDT", "ETH/USDT"])
        month = dg.MultiPartitionKey({"symbol": "BTCUSDT", "month": "2024-02-01"})
        subset = months.subset_with_partition_keys([month])
        mapped = month_of_days().get_upstream_mapped_partitions_result_for_partitions(
            subset, months, days, dynamic_partitions_store=instance)
        keys = sorted(mapped.partitions_subset.get_partition_keys())
    assert keys == [f"{d.isoformat()}|BTCUSDT" for d in FEBRUARY]


def test_materialising_a_month_archives_it_and_trims_the_daily_files(settings: Settings) -> None:
    store, writes = CandleStore(settings.data_dir), []
    for day in FEBRUARY:
        stored = store.store_table("BTC/USDT", Timeframe.M1, day, day_table(day))
        writes.append(PartitionWrite("binance", "BTC/USDT", Timeframe.M1, day, stored, "test"))
    catalog = MetadataStore(metadata_path(settings.data_dir))
    catalog.record_partitions(writes)
    asset = build_archive_asset(symbol_month_partitions(settings.start_date))
    resources = {"storage": StorageResource(data_dir=str(settings.data_dir)),
                 "archive": ArchiveResource(warm_days=30)}
    with dg.instance_for_test() as instance:
        register_symbols(instance, ["BTC/USDT"])
        key = dg.MultiPartitionKey({"symbol": "BTCUSDT", "month": "2024-02-01"})
        result = dg.materialize([asset], partition_key=key, resources=resources,
                                instance=instance)
        assert result.success
        (event,) = result.asset_materializations_for_node("ohlcv_1m_archive")
        # The IO manager still loads an archived day, now from the month file.
        day = build_defs(settings).load_asset_value(
            "ohlcv_1m", partition_key="2024-02-10|BTCUSDT", instance=instance)
    assert len(day) == 1440
    assert day["close"].tolist() == day_table(date(2024, 2, 10)).column("close").to_pylist()
    assert event.metadata["rows"].value == 29 * 1440
    assert event.metadata["daily_files_removed"].value == 29  # February is long past the window
    assert all(store.find("BTC/USDT", Timeframe.M1, d) is None for d in FEBRUARY)
    archived = CandleArchive(settings.data_dir / "archive").info(
        "binance", "BTC/USDT", Timeframe.M1, date(2024, 2, 1))
    assert archived is not None
    assert archived.days == tuple(FEBRUARY)
    (record,) = catalog.archive_months("binance")
    assert record.content_hash == event.metadata["content_hash_1m"].value


def test_the_schedule_asks_for_new_and_still_warm_months_of_every_symbol(
        settings: Settings) -> None:
    defs = build_defs(replace(settings, warm_days=30))
    schedule = defs.resolve_schedule_def("ohlcv_archive_schedule")
    with dg.instance_for_test() as instance:
        register_symbols(instance, ["BTC/USDT", "ETH/USDT"])
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2024, 5, 1, 3, tzinfo=UTC),
            repository_def=defs.get_repository_def())
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    # April just closed; March's last days are still inside the 30-day window; February is done.
    assert sorted(str(r.partition_key) for r in requests) == [
        "2024-03-01|BTCUSDT", "2024-03-01|ETHUSDT", "2024-04-01|BTCUSDT", "2024-04-01|ETHUSDT"]
