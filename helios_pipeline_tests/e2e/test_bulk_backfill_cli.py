"""``helios backfill`` through Dagster takes closed periods from the (simulated) bulk archive."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from helios_pipeline.batch.bulk import forget_checked_files
from helios_pipeline.cli.main import main
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.e2e.test_cli import cli_env  # noqa: F401 (fixture)

ARGS = ["backfill", "--symbols", "ETH/USDT", "--start", "2024-02-28", "--end", "2024-03-02"]


@pytest.fixture
def bulk_env(cli_env: Path, sim: SimExchangeServer,  # noqa: F811
             monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELIOS_BULK_URL", sim.base_url)
    forget_checked_files()  # a process reuses archive files it checked; each test starts afresh
    return cli_env


def sources(data: Path) -> dict[str, str]:
    records = MetadataStore(data / "metadata.sqlite").list_partitions(timeframe=Timeframe.M1)
    return {str(r.day): r.source for r in records}


def test_backfill_takes_the_archive_path(
    bulk_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(ARGS)
    out = capsys.readouterr().out
    assert code == 0, out
    found = sources(bulk_env)
    assert sorted(found) == ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
    assert found["2024-02-28"].endswith(".zip sha256=" + found["2024-02-29"].split("=")[-1])
    assert "/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2024-02.zip" in found["2024-02-28"]
    assert "/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2024-03.zip" in found["2024-03-01"]
    assert "1m partitions: 4 from the bulk archive" in out
    assert "0 from REST" in out
    spent = int(out.rsplit("REST weight spent:", 1)[1].split()[0])
    assert 0 < spent <= 200  # cross-checks and consistency checks; no candle pages


def test_a_missing_file_falls_back_to_rest_with_a_warning(
    bulk_env: Path, sim: SimExchangeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.set_faults("archive_404:path=ETHUSDT-1m-2024-02.zip")
    code = main(ARGS)
    captured = capsys.readouterr()
    assert code == 0, captured.out
    found = sources(bulk_env)
    assert found["2024-02-28"].startswith("binance@")
    assert found["2024-03-01"].startswith("archive ")
    logs = captured.out + captured.err
    assert "ETHUSDT-1m-2024-02.zip not used: not published (404). 2 day(s)" in logs
    assert "1m partitions: 2 from the bulk archive" in captured.out


def test_an_archive_that_differs_from_rest_is_alerted_and_not_stored(
    bulk_env: Path, sim: SimExchangeServer, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.set_faults("archive_drift:path=ETHUSDT-1m-2024-03.zip")
    with caplog.at_level(logging.WARNING):
        code = main(ARGS)
    assert code == 0, capsys.readouterr().out
    found = sources(bulk_env)
    assert found["2024-03-01"].startswith("binance@")
    assert found["2024-02-28"].startswith("archive ")
    alerts = [r.getMessage() for r in caplog.records if "differs from REST" in r.getMessage()]
    assert any("ETHUSDT-1m-2024-03.zip" in text and "volume archive=" in text
               for text in alerts), alerts
