"""A real InfluxDB 1.x server (Debian's ``influxdb`` package) for the tests, on free ports.

:class:`InfluxServer` writes a minimal config (everything under one temporary folder, no usage
reporting, no ``_internal`` monitor database), starts ``influxd run`` and waits until ``/ping``
answers. A test can :meth:`~InfluxServer.stop` it mid-run and :meth:`~InfluxServer.start` it
again on the same ports with the same data. Queries go through the v1 HTTP API (``/query``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
"""


@dataclass
class InfluxServer:
    """An ``influxd`` process this test session started (and can stop and restart).

    Attributes:
        http_port: Port of the HTTP API (``/ping``, ``/write``, ``/query``).
        rpc_port: Port of the backup/restore RPC service (bound to localhost, unused).
        workdir: Folder holding the config, meta, data and WAL directories and the log.
    """

    http_port: int
    rpc_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    databases_used: int = 0

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, what ``HELIOS_INFLUX_URL`` would hold."""
        return f"http://127.0.0.1:{self.http_port}"

    def fresh_database(self) -> str:
        """A database name no test used before (the mirror creates it)."""
        self.databases_used += 1
        return f"helios_test_{self.databases_used}"

    def start(self) -> None:
        """Start (or restart) the server on the same ports and wait until ``/ping`` answers."""
        binary = shutil.which("influxd")
        if binary is None:
            pytest.fail("influxd is not installed; scripts/test installs it (apt: influxdb).")
        config = self.workdir / "influxd.toml"
        config.write_text(_CONFIG.format(root=self.workdir, rpc_port=self.rpc_port,
                                         http_port=self.http_port))
        with (self.workdir / "influxd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"influxd exited with {self.process.returncode}; see "
                            f"{self.workdir / 'influxd.log'}")
            if self.is_up():
                return
            time.sleep(0.05)
        pytest.fail(f"influxd did not answer /ping on port {self.http_port} within 20 s")

    def is_up(self) -> bool:
        """Whether ``/ping`` answers 204 right now."""
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as response:  # noqa: S310
                return int(response.status) == 204
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def query(self, database: str, influxql: str) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; the ``series`` of its result (empty when none).

        Raises:
            AssertionError: The server answered with an error.
        """
        params = urllib.parse.urlencode({"db": database, "q": influxql, "epoch": "ms"})
        with urllib.request.urlopen(f"{self.url}/query?{params}", timeout=10) as response:  # noqa: S310
            body = json.loads(response.read())
        result = body["results"][0]
        assert "error" not in result, f"{influxql}: {result['error']}"
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def count(self, database: str, measurement: str, field: str = "close") -> int:
        """Number of points of ``measurement`` (``COUNT`` of ``field``), 0 when none."""
        series = self.query(database, f'SELECT COUNT("{field}") FROM "{measurement}"')  # noqa: S608
        return int(series[0]["values"][0][1]) if series else 0
