"""The Dagster UI in a real browser lists the ohlcv_1m partitions the pipeline materialised."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, sync_playwright

from helios_pipeline.defs.backfill import run_backfill
from helios_pipeline.settings import Settings
from helios_pipeline_tests.conftest import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - localhost only
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer on {url} within {timeout_s} s")


@pytest.fixture
def webserver(tmp_path: Path, settings: Settings) -> Iterator[str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    settings = replace(settings, symbols=("BTC/USDT", "ETH/USDT"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        outcome = run_backfill(
            ["BTC/USDT", "ETH/USDT"], date(2024, 1, 1), date(2024, 1, 2), instance, settings
        )
        assert outcome.success, outcome.failures
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "HELIOS_DATA_DIR": str(settings.data_dir),
           "HELIOS_EXCHANGE_URL": settings.exchange_url or "", "HELIOS_START_DATE": "2024-01-01",
           "HELIOS_SYMBOLS": "BTC/USDT,ETH/USDT"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(REPO_ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/server_info", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def dismiss_dialogs(page: Page) -> None:
    """Close the community dialog the UI shows on a first visit, if it is there."""
    for label in ("Dismiss", "Close", "No thanks", "Skip"):
        button = page.get_by_role("button", name=label)
        if button.count():
            button.first.click()


def test_ui_lists_materialised_partitions(webserver: str, tmp_path: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{webserver}/assets/ohlcv_1m?view=partitions", wait_until="networkidle")
        dismiss_dialogs(page)
        page.get_by_text("BTCUSDT").first.wait_for(timeout=60_000)
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "partitions.png"))
        browser.close()
    assert "ETHUSDT" in text
    assert "Materialized (4)" in text  # 2 symbols x 2 days, as backfilled above
    assert "Failed (0)" in text


def lineage_names(page: Page, webserver: str, asset: str, scope: str, depth: int, shown: str,
                  screenshot: Path) -> set[str]:
    """The words on ``asset``'s lineage page (``scope`` upstream or downstream, ``depth`` deep).

    Read once ``shown`` (an asset name) is drawn; the page is saved to ``screenshot``.
    """
    page.goto(f"{webserver}/assets/{asset}?view=lineage&lineageScope={scope}"
              f"&lineageDepth={depth}", wait_until="networkidle")
    dismiss_dialogs(page)
    page.get_by_text(shown).first.wait_for(timeout=60_000)
    text = page.inner_text("body")
    page.screenshot(path=str(screenshot))
    return set(text.split())


def test_ui_shows_the_trading_inputs_downstream_of_the_candles(webserver: str,
                                                                tmp_path: Path) -> None:
    """Issue 11's "the UI shows the indicator and grid assets downstream of the candles"."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        upstream = lineage_names(page, webserver, "grid_levels", "upstream", 2, "ohlcv_1h",
                                 tmp_path / "grid_lineage.png")
        downstream = lineage_names(page, webserver, "ohlcv_1h", "downstream", 1, "indicators_1h",
                                   tmp_path / "candles_lineage.png")
        browser.close()
    assert {"grid_levels", "ohlcv_1m", "ohlcv_1h"} <= upstream
    assert {"indicators_1h", "market_regime", "grid_levels"} <= downstream
