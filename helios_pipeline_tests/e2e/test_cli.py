"""The ``helios`` command: errors a person can act on, and a real backfill through Dagster."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helios_pipeline.cli.main import main
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.metadata import MetadataStore


@pytest.fixture
def cli_env(tmp_path: Path, sim: SimExchangeServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the CLI against the simulated exchange with data and Dagster state under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("HELIOS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HELIOS_EXCHANGE_URL", sim.base_url)
    monkeypatch.setenv("HELIOS_REQUEST_TIMEOUT_S", "2")
    return tmp_path / "data"


def test_backfill_through_dagster(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backfill", "--symbols", "BTC/USDT,ethusdt", "--start", "2024-04-01",
                 "--end", "2024-04-02"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "BTC/USDT 2024-04-01..2024-04-02 (2 days) ok" in out
    records = MetadataStore(cli_env / "metadata.sqlite").list_partitions(timeframe=Timeframe.M1)
    assert sorted((r.symbol, str(r.day), r.rows) for r in records) == [
        ("BTC/USDT", "2024-04-01", 1440), ("BTC/USDT", "2024-04-02", 1440),
        ("ETH/USDT", "2024-04-01", 1440), ("ETH/USDT", "2024-04-02", 1440),
    ]
    market = MetadataStore(cli_env / "metadata.sqlite").load_market("binance", "BTC/USDT")
    assert market is not None
    assert market.tick_size is not None
    assert market.min_notional is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-13-01", "--end", "2024-01-02"], "Bad date '2024-13-01'"),
        (["--start", "2024-01-05", "--end", "2024-01-02"], "is before --start"),
        (["--start", "2017-01-01", "--end", "2017-01-02"], "is before HELIOS_START_DATE"),
        (["--start", "2017-08-10", "--end", "2017-08-20"], "is before HELIOS_START_DATE"),
        (["--start", "2024-01-01", "--end", "2999-01-01"], "has not closed yet"),
    ],
)
def test_bad_dates_are_explained(
    cli_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["backfill", "--symbols", "BTC/USDT", *args]) == 2
    out = capsys.readouterr().err
    assert message in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) <= 2  # one message (wrapped at most once)
    assert not (cli_env / "market_data").exists()  # nothing half-written


def test_unknown_symbol_is_explained(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backfill", "--symbols", "BTC/USDT,NOPE/USDT", "--start", "2024-01-01",
                 "--end", "2024-01-01"])
    out = capsys.readouterr().err
    assert code == 2
    assert "NOPE/USDT" in out
    assert not (cli_env / "market_data").exists()


def test_unreachable_exchange_is_explained(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HELIOS_EXCHANGE_URL", f"http://127.0.0.1:{port}")
    yesterday = (datetime.now(tz=UTC) - timedelta(days=1)).date().isoformat()
    code = main(["backfill", "--symbols", "BTC/USDT", "--start", yesterday, "--end", yesterday])
    out = capsys.readouterr().err
    assert code == 2
    assert f"127.0.0.1:{port}" in out
    assert "HELIOS_EXCHANGE_URL" in out


def test_dagster_definitions_validate_from_the_project_root(tmp_path: Path) -> None:
    import subprocess
    import sys

    from helios_pipeline_tests.conftest import REPO_ROOT

    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "All code locations passed validation" in done.stderr + done.stdout


def test_stream_takes_its_symbols_and_kinds_from_helios_settings(
    cli_env: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import redis

    from helios_pipeline.storage.hot.keys import stream_key

    monkeypatch.setenv("HELIOS_REDIS_URL", redis_url)
    monkeypatch.setenv("HELIOS_SYMBOLS", "BTC/USDT,ETH/USDT")
    monkeypatch.setenv("HELIOS_STREAM_KINDS", "trade")
    client = redis.Redis.from_url(redis_url)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        client.delete(stream_key("binance", symbol, "trade"), stream_key("binance", symbol, "book"))
    assert main(["stream", "--duration", "3", "--status-every", "60"]) == 0
    assert "Streaming 2 symbols (trade)" in capsys.readouterr().out
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert client.xlen(stream_key("binance", symbol, "trade")) > 0
        assert not client.exists(stream_key("binance", symbol, "book"))
    client.close()


def test_bad_stream_settings_are_explained(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELIOS_STREAM_KINDS", "trades")
    assert main(["stream", "--duration", "1"]) == 2
    assert "HELIOS_STREAM_KINDS='trades': expected some of trade, ticker, book" in (
        capsys.readouterr().err)
    monkeypatch.delenv("HELIOS_STREAM_KINDS")
    assert main(["stream", "--duration", "1", "--queue-size", "0"]) == 2
    assert "queue_size=0: must be >= 1" in capsys.readouterr().err
    assert main(["stream", "--duration", "1", "--shards", "0"]) == 2
    assert "--shards 0: give a number of processes, at least 1" in capsys.readouterr().err
