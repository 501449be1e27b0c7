"""Planted credentials never leave: not in output, logs, the Dagster event log or reports.

One module-scoped run plants an exchange API key and secret (in the encrypted store), the
store's master key, a Redis password (a real redis-server started with ``--requirepass``) and a
webhook token, then drives the ``helios`` command as a user would: a backfill through Dagster
against the simulated exchange, ``helios stream`` into the password-protected Redis, the offline
demo (two simulated venues, Dagster runs, the quality report), ``helios secrets list`` and
``helios audit``. Every byte of stdout, stderr and every file under the data root and the Dagster
home is then searched for the planted values.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from secrets import token_hex
from urllib.parse import quote

import pytest
import redis
from cryptography.fernet import Fernet

from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.paths import metadata_path, quality_reports_root
from helios_pipeline_tests.conftest import REPO_ROOT, free_port

# Fresh values every session: nothing can pass by having learnt a fixed string.
API_KEY = f"PlantedApiKey{token_hex(8)}"
API_SECRET = f"PlantedSecret{token_hex(8)}"
REDIS_PASSWORD = f"PlantedRedisPw!{token_hex(6)}"
WEBHOOK_TOKEN = f"PlantedHookToken{token_hex(6)}"
MASTER_KEY = Fernet.generate_key().decode()
PLANTED = {"API key": API_KEY, "API secret": API_SECRET, "Redis password": REDIS_PASSWORD,
           "webhook token": WEBHOOK_TOKEN, "master key": MASTER_KEY}


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server that requires :data:`REDIS_PASSWORD`; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; scripts/test installs it (apt package).")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-auth")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--requirepass", REDIS_PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.terminate()
                pytest.fail(f"password-protected redis-server did not answer on port {port}")
            time.sleep(0.05)
    client.close()
    yield f"redis://:{quote(REDIS_PASSWORD, safe='')}@127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


class Session:
    """The planted environment and everything the commands printed."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.outputs: dict[str, str] = {}

    def helios(self, name: str, *args: str, stdin: str | None = None,
               timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "helios_pipeline.cli", *args],
                              cwd=REPO_ROOT, env=self.env, input=stdin, capture_output=True,
                              text=True, timeout=timeout_s, check=False)
        self.outputs[f"{name} stdout"] = done.stdout
        self.outputs[f"{name} stderr"] = done.stderr
        return done


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, password_redis: str) -> Session:
    root = tmp_path_factory.mktemp("planted")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}/storage\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "HELIOS_DATA_DIR": str(root / "data"),
           "HELIOS_REDIS_URL": password_redis, "HELIOS_MASTER_KEY": MASTER_KEY,
           "HELIOS_ALERT_WEBHOOK_URL":
               f"http://127.0.0.1:{free_port()}/hooks/alerts?token={WEBHOOK_TOKEN}",
           "HELIOS_REQUEST_TIMEOUT_S": "5"}
    env.pop("HELIOS_EXCHANGE_URL", None)
    session = Session(root, env)
    for name, value in (("binance.apiKey", API_KEY), ("binance.secret", API_SECRET),
                        ("okx.apiKey", API_KEY), ("okx.secret", API_SECRET)):
        done = session.helios(f"secrets set {name}", "secrets", "set", name, stdin=value)
        assert done.returncode == 0, done.stdout + done.stderr
    with SimExchangeServer(port=0) as sim:
        session.env["HELIOS_EXCHANGE_URL"] = sim.base_url
        day = (datetime.now(tz=UTC) - timedelta(days=2)).date().isoformat()
        done = session.helios("backfill", "backfill", "--symbols", "BTC/USDT", "--start", day,
                              "--end", day)
        assert done.returncode == 0, done.stdout + done.stderr
        done = session.helios("stream", "stream", "--symbols", "BTC/USDT", "--duration", "4",
                              "--status-every", "1", timeout_s=120)
        assert done.returncode == 0, done.stdout + done.stderr
    session.env.pop("HELIOS_EXCHANGE_URL")
    done = session.helios("demo", "demo", "--days", "1", "--symbols", "BTC/USDT,ETH/USDT")
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: the planted data faults
    for name, args in (("secrets list", ("secrets", "list")), ("audit", ("audit",))):
        done = session.helios(name, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return session


def _files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from (p for p in root.rglob("*") if p.is_file())


def test_the_commands_did_their_work(session: Session) -> None:
    """The search below means something only if the runs really happened."""
    data = Path(session.env["HELIOS_DATA_DIR"])
    assert "BTC/USDT" in session.outputs["backfill stdout"]
    assert "ok" in session.outputs["backfill stdout"]
    assert "redis://:***@127.0.0.1" in session.outputs["stream stdout"]
    assert list(quality_reports_root(data).rglob("*.html"))
    assert session.outputs["secrets list stdout"].split() == [
        "binance.apiKey", "binance.secret", "okx.apiKey", "okx.secret"]
    assert "credential_use" in session.outputs["audit stdout"]
    assert metadata_path(data).exists()
    event_logs = list((Path(session.env["DAGSTER_HOME"]) / "storage").rglob("*.db"))
    assert event_logs, "the Dagster runs left no event log"


def test_no_planted_value_in_any_output(session: Session) -> None:
    leaks = [f"{what} in {name}" for name, text in session.outputs.items()
             for what, value in PLANTED.items()
             if value in text or quote(value, safe="") in text]
    assert not leaks, leaks


def test_no_planted_value_in_any_file(session: Session) -> None:
    """Logs, system/error logs, quality reports, the audit trail and the Dagster event log."""
    data, home = Path(session.env["HELIOS_DATA_DIR"]), Path(session.env["DAGSTER_HOME"])
    leaks = []
    searched = 0
    for path in _files(data, home):
        content = path.read_bytes()
        searched += 1
        for what, value in PLANTED.items():
            for form in {value, quote(value, safe="")}:
                if form.encode() in content:
                    leaks.append(f"{what} in {path.relative_to(session.root)}")
    assert searched > 10
    assert not leaks, leaks
