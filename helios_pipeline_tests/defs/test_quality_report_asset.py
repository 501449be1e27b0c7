"""data_quality_report: one HTML report per day from what the candle assets stored."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.defs.build import QUALITY_REPORT_JOB, build_defs
from helios_pipeline.defs.cross import REFERENCE_OHLCV_1M
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer

DAY = date(2024, 6, 3)


def test_report_counts_the_day_gap_and_lineage(sim: SimExchangeServer, settings: Settings) -> None:
    sim.set_faults("missing:symbol=ETHUSDT,start=2024-06-03T10:00,minutes=30")
    defs = build_defs(settings)
    graph = defs.resolve_asset_graph()
    # The graph does not depend on configuration: the reference venue's candles are always an
    # input, read when HELIOS_REFERENCE_EXCHANGE names one (this settings object does not).
    assert graph.get(dg.AssetKey("data_quality_report")).parent_keys == {
        dg.AssetKey("ohlcv_1m"), REFERENCE_OHLCV_1M}
    with dg.instance_for_test() as instance:
        assert run_backfill(["BTC/USDT", "ETH/USDT"], DAY, DAY, instance, settings).success
        result = defs.resolve_job_def(QUALITY_REPORT_JOB).execute_in_process(
            instance=instance, partition_key=DAY.isoformat()
        )
        (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["missing_minutes"].value == 30
    assert metadata["symbols"].value == 2
    assert metadata["status"].value == "warn"
    btc, eth = (metadata[f"score[binance:{s}/USDT]"].value for s in ("BTC", "ETH"))
    assert eth < btc  # the 30-minute gap costs ETH completeness (1410 of 1440 rows)
    assert metadata["rows"].value == 1440 + 1410
    report = Path(str(metadata["report"].value))
    assert report == settings.data_dir / "system" / "data_quality_reports" / (
        "data_quality_report_20240603.html")
    html = report.read_text()
    assert "ETH/USDT" in html
    assert "<svg" in html
