"""Shared fixtures: repo paths, real-data folder, a temporary data root, the simulated exchange."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
from helios_pipeline_tests.influx_server import InfluxServer

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real Binance data the tests read, copied into the repository (see data/README.md).
TEST_DATA = Path(__file__).resolve().parent / "data"
KLINES_DIR = TEST_DATA / "binance_btcusdt_1m"
EXCERPT = TEST_DATA / "binance_public_market_data_excerpt.json"
DATABASES = 4096  # logical databases of the test Redis: one per test that asks for one


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests that need the real internet unless HELIOS_LIVE_TESTS=1."""
    if os.environ.get("HELIOS_LIVE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs the internet; set HELIOS_LIVE_TESTS=1 to run")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``helios_pipeline_tests/data``: the real Binance files the tests read."""
    return TEST_DATA


@pytest.fixture(scope="session")
def sim_exchange() -> Iterator[SimExchangeServer]:
    """One simulated Binance exchange for the session (faults cleared per test).

    Its websockets send 5 trades a second per symbol: on the wall-clock market (the default)
    some minutes of the day carry only a few fills, and a test streaming for a few seconds must
    not depend on the hour it runs at.
    """
    with SimExchangeServer(port=0, ws_config=WsConfig(trades_per_second=5.0)) as sim:
        yield sim


@pytest.fixture
def sim(sim_exchange: SimExchangeServer) -> Iterator[SimExchangeServer]:
    """The session's simulated exchange with no faults, reset again afterwards."""
    sim_exchange.set_faults("")
    yield sim_exchange
    sim_exchange.set_faults("")


@pytest.fixture
def settings(tmp_path: Path, sim: SimExchangeServer) -> Settings:
    """Settings pointing at a temporary data root and the simulated exchange."""
    return replace(
        Settings.from_env({}),
        data_dir=tmp_path / "data",
        exchange_url=sim.base_url,
        symbols=("BTC/USDT", "ETH/USDT"),
        start_date="2024-01-01",
        request_timeout_s=5.0,
    )


@dataclass
class RedisServer:
    """A real redis-server process this test session started (and can stop and restart).

    It has :data:`DATABASES` logical databases, so that each test can have one of its own.
    """

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    databases_used: int = 0

    @property
    def url(self) -> str:
        """``redis://`` URL of the server's database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def fresh_url(self) -> str:
        """URL of a database no test used before (emptied, in case the server restarted)."""
        import redis

        self.databases_used += 1
        if self.databases_used >= DATABASES:
            pytest.fail(f"More than {DATABASES} tests asked for a Redis database; raise DATABASES.")
        url = f"redis://127.0.0.1:{self.port}/{self.databases_used}"
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        return url

    def start(self) -> None:
        """Start (or restart) the server on the same port and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; scripts/test installs it (apt package).")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
             "--databases", str(DATABASES)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"redis-server did not answer on port {self.port} within 10 s")

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis 7 server on a free port, started for this session."""
    server = RedisServer(port=free_port(), workdir=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of an empty database of the session's Redis, this test's alone.

    A database per test: a writer a failed test left running cannot replay its log into the
    streams of the tests after it.
    """
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    return redis_server.fresh_url()


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A real InfluxDB 1.x server on free ports, started for this session (tests may stop it)."""
    server = InfluxServer(http_port=free_port(), rpc_port=free_port(),
                          workdir=tmp_path_factory.mktemp("influx"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx(influx_server: InfluxServer) -> InfluxServer:
    """The session's InfluxDB, running again if an earlier test stopped it."""
    if influx_server.process is None or influx_server.process.poll() is not None:
        influx_server.start()
    return influx_server


@dataclass
class S3Server:
    """A real moto S3 server process (``moto_server``) this test session started."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        """``host:port`` of the server."""
        return f"127.0.0.1:{self.port}"

    def bucket_url(self, bucket: str, prefix: str = "archive") -> str:
        """A ``HELIOS_ARCHIVE_URL`` for a new bucket (created here) on this server."""
        import boto3

        boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test",  # noqa: S106 - moto
                     ).create_bucket(Bucket=bucket)
        return (f"s3://test:test@{bucket}/{prefix}?endpoint_override={self.endpoint}"
                "&scheme=http&region=us-east-1")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone S3 server on a free port, started for this session."""
    # The project's own moto, not whichever ``moto_server`` comes first on PATH: an older moto
    # elsewhere on the machine (5.2.1) answers pyarrow's CompleteMultipartUpload with an error.
    if importlib.util.find_spec("moto.server") is None:
        pytest.fail("moto is not installed in this environment; install the dev extra "
                    "(pip install -e '.[dev]').")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"moto_server did not listen on port {port} within 20 s")
            time.sleep(0.1)
    yield S3Server(port, process)
    process.terminate()
    process.wait(timeout=10)


POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """URL of a fresh, empty database on the machine's PostgreSQL; dropped afterwards.

    ``scripts/test`` starts the server (127.0.0.1:5432, trust auth) when it is installed but not
    running.
    """
    import uuid

    import psycopg2

    name = f"helios_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL does not answer at {POSTGRES_SERVER} ({exc}); scripts/test "
                    "starts it.")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(autouse=True)
def dagster_instance_context(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests under defs/ and e2e/ run inside their own Dagster instance context.

    Dagster keeps the current instance's definitions-state storage in a context variable that
    entering an instance sets and leaving it resets. A test that leaves instances in another
    order than it entered them (or leaves one to the garbage collector) leaves that variable
    pointing at a dead instance, and the next test that loads definitions outside an instance
    fails with "Attempted to resolve undefined DagsterInstance weakref". An instance entered
    around each such test keeps it independent of what ran before.
    """
    if request.node.path.parent.name not in ("defs", "e2e"):
        yield
        return
    import dagster as dg

    with dg.DagsterInstance.ephemeral():
        yield
