"""ticker_snapshots: closed hours flushed from real Redis to hourly files by the sensor."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pyarrow.parquet as pq
import pytest

from helios_pipeline.defs.build import TICKERS_JOB, build_defs
from helios_pipeline.defs.realtime import TICKERS, closed_hours
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.settings import Settings
from helios_pipeline.storage.hot.store import HotStore

NOW = datetime.now(tz=UTC)
LAST_HOUR = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def seed_ticks(redis_url: str, symbol: str, count: int) -> list[Tick]:
    """``count`` ticker ticks spread over the last closed hour, written to real Redis."""
    start_ms = int(LAST_HOUR.timestamp() * 1000)
    ticks = [
        Tick("binance", symbol, "ticker", exchange_ts_ms=start_ms + i * 60_000,
             received_ts_us=(start_ms + i * 60_000 + 3) * 1000, price=Decimal(f"100.{i:02d}"),
             bid=Decimal("99.99"), ask=Decimal("100.01000001"), qty=Decimal(1), event_id=i,
             seq=(start_ms + i * 60_000 + 3) * 1000)
        for i in range(count)
    ]
    hot = HotStore(redis_url, retention_ms=3 * 3_600_000)
    hot.append(ticks)
    hot.close()
    return ticks


def test_closed_hours_only_lists_whole_hours_still_in_redis() -> None:
    now = datetime(2026, 11, 26, 14, 0, 3, tzinfo=UTC)
    assert closed_hours(now, timedelta(minutes=90)) == []  # 13:00 closes at 14:00:05
    now = datetime(2026, 11, 26, 14, 20, tzinfo=UTC)
    assert closed_hours(now, timedelta(minutes=90)) == [datetime(2026, 11, 26, 13, tzinfo=UTC)]


def test_sensor_flushes_the_closed_hour_to_its_file(redis_url: str, settings: Settings) -> None:
    settings = replace(settings, redis_url=redis_url, ticker_start_date="2026-01-01",
                       hot_retention_minutes=180)
    ticks = seed_ticks(redis_url, "BTC/USDT", 60)
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("ticker_snapshots_sensor")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
        with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        requests = result.run_requests or []
        assert [str(r.partition_key) for r in requests] == [f"{LAST_HOUR:%Y-%m-%d-%H:%M}|BTCUSDT"]
        run = defs.resolve_job_def(TICKERS_JOB).execute_in_process(
            instance=instance, partition_key=requests[0].partition_key)
        assert run.success
        assert instance.get_materialized_partitions(TICKERS) == {str(requests[0].partition_key)}
    path = (settings.data_dir / "market_data" / "BTCUSDT" / f"{LAST_HOUR:%Y}" / f"{LAST_HOUR:%m}"
            / f"ticker_{LAST_HOUR:%Y%m%d_%H}.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 60
    assert table.column("price").to_pylist() == [t.price for t in ticks]
    assert table.column("ask").to_pylist()[0] == Decimal("100.01000001")
    current = settings.data_dir / "market_data" / "BTCUSDT" / "current" / "realtime_ticker.parquet"
    assert current.exists()


def test_health_sensor_combines_shards_as_numbers_and_skips_when_none_runs(
        redis_url: str, settings: Settings) -> None:
    import redis

    from helios_pipeline.storage.hot.keys import health_key

    defs = build_defs(replace(settings, redis_url=redis_url))
    sensor = defs.resolve_sensor_def("stream_health_sensor")
    client = redis.Redis.from_url(redis_url)

    def evaluate() -> dg.SensorResult:
        with dg.instance_for_test() as instance, dg.build_sensor_context(
                instance=instance, resources=defs.resources) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        return result

    skip = evaluate().skip_reason
    assert skip is not None
    assert "not running" in (skip.skip_message or "")
    for shard, (lag, shed) in {"-1of2": ("120", "0"), "-2of2": ("40", "3")}.items():
        client.hset(health_key("binance", shard), mapping={
            "status": "running", "lag_ms": lag, "messages": "10", "valid": "9", "shed": shed,
            "quarantined": "1", "reconnects": "0"})
    (event,) = evaluate().asset_events or []
    assert isinstance(event, dg.AssetObservation)
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert metadata == {"lag_ms": 120, "messages": 20, "valid": 18, "quarantined": 2, "shed": 3,
                        "reconnects": 0, "status": "running"}
    client.close()


def test_health_sensor_alerts_once_when_the_stream_stops_and_once_when_it_is_back(
        redis_url: str, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    import redis

    from helios_pipeline.storage.hot.keys import health_key

    defs = build_defs(replace(settings, redis_url=redis_url))
    sensor = defs.resolve_sensor_def("stream_health_sensor")
    client = redis.Redis.from_url(redis_url)
    cursor: str | None = None

    def evaluate() -> list[str]:
        nonlocal cursor
        caplog.clear()
        with dg.instance_for_test() as instance, dg.build_sensor_context(
                instance=instance, resources=defs.resources, cursor=cursor) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        cursor = result.cursor
        return [r.alert["rule"] for r in caplog.records if hasattr(r, "alert")]

    running = {"status": "running", "lag_ms": "50", "shed": "0"}
    with caplog.at_level(logging.INFO, logger="helios.quality"):
        client.hset(health_key("binance"), mapping=running)
        assert evaluate() == []
        client.delete(health_key("binance"))  # the service stopped: its health expired
        assert evaluate() == ["stream.down"]
        assert evaluate() == []  # still down: no second alert
        client.hset(health_key("binance"), mapping=running)
        assert evaluate() == ["stream.down.recovered"]
    client.close()
