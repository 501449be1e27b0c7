"""Two venues: the reference venue's candles, the divergence view and its check, the report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from helios_pipeline.defs.backfill import run_backfill, run_followups
from helios_pipeline.defs.cross import DIVERGENCE, DIVERGENCE_CHECK, REFERENCE_OHLCV_1M
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer

DAY = date(2024, 7, 9)


@pytest.fixture(scope="module")
def okx() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(
        port=0, venue="okx",
        faults=f"divergence:symbol=BTCUSDT,start={DAY}T12:00,minutes=15,factor=1.08",
    ) as server:
        yield server


def test_divergence_is_listed_and_fails_its_check(
    okx: SimExchangeServer, settings: Settings
) -> None:
    settings = replace(settings, reference_exchange="okx", reference_exchange_url=okx.base_url)
    with dg.instance_for_test() as instance:
        assert run_backfill(["BTC/USDT", "ETH/USDT"], DAY, DAY, instance, settings).success
        okx_done = instance.get_materialized_partitions(REFERENCE_OHLCV_1M)
        assert okx_done == {f"{DAY}|BTCUSDT", f"{DAY}|ETHUSDT"}
        followups = run_followups(["BTC/USDT", "ETH/USDT"], DAY, DAY, instance, settings)
        assert followups.success, followups.failures
        events = {e.partition_key: e.asset_materialization.metadata  # type: ignore[union-attr]
                  for e in instance.fetch_materializations(DIVERGENCE, limit=10).records}
        checks = instance.event_log_storage.get_asset_check_execution_history(
            DIVERGENCE_CHECK, limit=10)
        verdicts = {c.partition: c.status.value for c in checks if c.partition}
    btc = events[f"{DAY}|BTCUSDT"]
    assert btc["minutes_above_threshold"].value == 15
    assert btc["compared_minutes"].value == 1440
    assert 0.07 < btc["max_divergence"].value < 0.09
    assert events[f"{DAY}|ETHUSDT"]["minutes_above_threshold"].value == 0
    assert verdicts == {f"{DAY}|BTCUSDT": "FAILED", f"{DAY}|ETHUSDT": "SUCCEEDED"}
    listed = Path(str(btc["path"].value)).read_text().splitlines()
    assert len(listed) == 1 + 15
    assert listed[1].startswith(f"{DAY} 12:00:00")
    report = settings.data_dir / "system" / "data_quality_reports" / (
        f"data_quality_report_{DAY:%Y%m%d}.html")
    assert "okx" in report.read_text()
