"""`helios stream` feeds Redis; hourly ticker partitions then appear in the Dagster UI on their own.

The issue's "done when": the stream service runs against the simulated exchange and the Dagster
UI shows ``ticker_snapshots`` partitions (symbol x UTC hour) appearing without anyone launching a
run. The test cannot wait for a real hour to close, so it:

1. writes BTC/USDT ticker and book-top ticks of the previous, closed UTC hour into Redis through
   the hot tier's write path, each received a few ms after its exchange time (as the stream
   service would have stored them an hour ago);
2. runs the real ``helios stream`` subprocess against the simulated exchange for a few seconds
   (the current hour's streams, the latest prices, the published health);
3. starts ``dagster dev`` (webserver + daemon) on a temporary DAGSTER_HOME and launches nothing:
   ``symbol_partitions_sensor`` registers the symbols, ``ticker_snapshots_sensor`` launches the
   closed hour's run;
4. waits for that partition to be materialised by a sensor-launched run, checks the hourly file
   and opens the asset's partitions page in chromium.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pyarrow.parquet as pq
from playwright.sync_api import expect, sync_playwright

from helios_pipeline.defs.partitions import SYMBOL_DIM
from helios_pipeline.defs.realtime import ARRIVAL_SLACK_MS, HOUR_DIM, TICKERS
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import datetime_to_ms
from helios_pipeline.settings import Settings
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.paths import ticker_path
from helios_pipeline_tests.conftest import REPO_ROOT
from helios_pipeline_tests.e2e.test_dagster_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    dismiss_dialogs,
    free_port,
    wait_until_up,
)

SYMBOL, OTHER = "BTC/USDT", "ETH/USDT"
# With the default 90 minutes the sensor can flush an hour only in the first 30 minutes after it
# closed (it must still be wholly in Redis); 3 h keeps the previous hour whole at any minute.
RETENTION_MINUTES = 180
STREAM_SECONDS = 4
SENSOR_TIMEOUT_S = 240
SENSOR_NAME = "ticker_snapshots_sensor"


def previous_closed_hour() -> datetime:
    """Start of the UTC hour before this one, once it has closed (arrival slack included)."""
    now = datetime.now(tz=UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    closed_at = current + timedelta(milliseconds=ARRIVAL_SLACK_MS + 1_000)
    if now < closed_at:  # the hour has just turned: late ticks of the last one may still arrive
        time.sleep((closed_at - now).total_seconds())
    return current - timedelta(hours=1)


def hour_key(symbol_id: str, hour: datetime) -> str:
    """The ``ticker_snapshots`` partition key of a symbol (storage id) and UTC hour."""
    return str(dg.MultiPartitionKey({SYMBOL_DIM: symbol_id, HOUR_DIM: f"{hour:%Y-%m-%d-%H:%M}"}))


def store_hour_of_ticks(redis_url: str, hour: datetime) -> list[Tick]:
    """A ticker and a book top of BTC/USDT every minute of ``hour``, stored in the hot tier.

    Each tick is received 3 ms after its exchange time, and its seq (the stream id) is that
    receive time in microseconds, the value DurableTickWriter assigns. Redis accepts only ids
    above a stream's last one, so this runs before the stream service adds the current hour.
    """
    start_ms = datetime_to_ms(hour)
    ticks: list[Tick] = []
    for minute in range(60):
        exchange_ms = start_ms + minute * 60_000 + 250
        received_us = (exchange_ms + 3) * 1_000
        bid = Decimal("53190.12") + minute
        ask = bid + Decimal("0.01")
        ticks.append(Tick("binance", SYMBOL, "ticker", exchange_ms, received_us, price=ask,
                          qty=Decimal("29659.07857000"), bid=bid, ask=ask,
                          event_id=20783001890000 + minute, seq=received_us))
        ticks.append(Tick("binance", SYMBOL, "book", exchange_ms + 500, received_us + 500_000,
                          bid=bid, ask=ask, event_id=exchange_ms + 497, seq=received_us + 500_000))
    hot = HotStore(redis_url, RETENTION_MINUTES * 60_000)
    try:
        result = hot.append(ticks)
    finally:
        hot.close()
    assert (result.added, result.skipped, result.expired) == (len(ticks), 0, 0), result
    return ticks


def helios_env(settings: Settings, redis_url: str, hour: datetime) -> dict[str, str]:
    """``HELIOS_*`` variables pointing the CLI and Dagster at the test's exchange, Redis, data."""
    return {**os.environ, "HELIOS_DATA_DIR": str(settings.data_dir),
            "HELIOS_EXCHANGE_URL": settings.exchange_url or "", "HELIOS_REDIS_URL": redis_url,
            "HELIOS_SYMBOLS": f"{SYMBOL},{OTHER}", "HELIOS_START_DATE": "2024-01-01",
            "HELIOS_TICKER_START_DATE": f"{hour - timedelta(days=1):%Y-%m-%d}",
            "HELIOS_HOT_RETENTION_MINUTES": str(RETENTION_MINUTES)}


def run_helios_stream(env: dict[str, str], redis_url: str, hour: datetime) -> None:
    """``helios stream`` against the simulated exchange for a few seconds; checks what it wrote."""
    done = subprocess.run(
        [sys.executable, "-m", "helios_pipeline.cli", "stream", "--symbols", f"{SYMBOL},{OTHER}",
         "--duration", str(STREAM_SECONDS), "--status-every", "3600"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, f"helios stream failed:\n{done.stdout}\n{done.stderr}"
    later_ms = datetime_to_ms(hour + timedelta(hours=1))
    hot = HotStore(redis_url, RETENTION_MINUTES * 60_000)
    try:
        for symbol in (SYMBOL, OTHER):
            for kind in ("ticker", "book"):
                assert hot.recent(symbol, kind, later_ms), f"helios stream wrote no {symbol} {kind}"
        assert hot.client.exists("helios:binance:stream_health")
    finally:
        hot.close()


@contextmanager
def dagster_dev(home: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``dagster dev`` (webserver and daemon) on ``home``; yields the UI's URL, stops on SIGINT."""
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {home}/storage\ntelemetry:\n  enabled: false\n"
    )
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT, env={**env, "DAGSTER_HOME": str(home)}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/server_info", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``dagster dev`` with SIGINT (its clean shutdown); kill its session if that fails."""
    # A process that ignores SIGINT (pytest started in the background) passes that on.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: webserver, daemon, code servers
        proc.wait(timeout=10)


def wait_for_sensor_run(instance: dg.DagsterInstance, key: str, log: Path) -> dg.DagsterRun:
    """The successful run of partition ``key``, once the daemon's sensor has launched it."""
    deadline = time.monotonic() + SENSOR_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key}))
        failed = [r for r in runs if r.status in (dg.DagsterRunStatus.FAILURE,
                                                  dg.DagsterRunStatus.CANCELED)]
        assert not failed, f"run {failed[0].run_id} of {key} {failed[0].status.value}"
        done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
        if done and key in instance.get_materialized_partitions(TICKERS):
            return done[0]
        time.sleep(1)
    tail = log.read_text(errors="replace")[-4000:]
    raise AssertionError(f"no successful run of {key} within {SENSOR_TIMEOUT_S} s; "
                         f"dagster dev said:\n{tail}")


def check_ui_shows_partition(
    url: str, key: str, run: dg.DagsterRun, rows: int, shots: Path
) -> None:
    """The partitions page shows materialised partitions, and ``key`` with its run and rows."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/assets/ticker_snapshots?view=partitions", wait_until="networkidle")
        dismiss_dialogs(page)
        page.get_by_text("BTCUSDT").first.wait_for(timeout=60_000)
        # At least this one; more only if an hour closed meanwhile and the sensor flushed it.
        expect(page.get_by_text(re.compile(r"^Materialized \([1-9]\d*\)$"))).to_be_visible()
        expect(page.get_by_text("Failed (0)")).to_be_visible()
        page.screenshot(path=str(shots / "ticker_partitions.png"))
        # The link the page itself makes when the hour and then the symbol are clicked.
        page.goto(f"{url}/assets/ticker_snapshots?view=partitions&partition={quote(key)}",
                  wait_until="networkidle")
        dismiss_dialogs(page)
        expect(page.get_by_text(key, exact=True).first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
        expect(page.get_by_role("link", name=run.run_id[:8])).to_be_visible()
        expect(page.get_by_role("link", name="ticker_snapshots_job")).to_be_visible()
        expect(page.locator("tr").filter(has_text="rows")).to_contain_text(str(rows))
        page.screenshot(path=str(shots / "ticker_partition.png"))
        browser.close()


def test_sensor_materialises_streamed_hour_and_ui_shows_it(
    tmp_path: Path, settings: Settings, redis_url: str
) -> None:
    hour = previous_closed_hour()
    ticks = store_hour_of_ticks(redis_url, hour)
    env = helios_env(settings, redis_url, hour)
    run_helios_stream(env, redis_url, hour)
    home, log = tmp_path / "dagster_home", tmp_path / "dagster_dev.log"
    key = hour_key("BTCUSDT", hour)
    with dagster_dev(home, env, log) as url:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = wait_for_sensor_run(instance, key, log)
            # The sensor requests every closed hour with ticks in one tick: ETH/USDT had none.
            other_runs = instance.get_runs(
                dg.RunsFilter(tags={"dagster/partition": hour_key("ETHUSDT", hour)}))
        check_ui_shows_partition(url, key, run, len(ticks), tmp_path)
    assert run.tags.get("dagster/sensor_name") == SENSOR_NAME
    assert run.tags.get("dagster/run_key") == key
    assert other_runs == []
    table = pq.read_table(ticker_path(settings.data_dir, SYMBOL, hour, "parquet"))
    assert table.num_rows == len(ticks)
    assert table.column("ask").to_pylist()[0] == ticks[0].ask  # exact decimals, oldest first
