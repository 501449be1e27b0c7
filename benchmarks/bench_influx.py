"""InfluxDB mirror: points/s of our mirror vs a plain gzip POST of the same lines, same server.

Starts its own ``influxd`` (Debian's ``influxdb`` 1.6) on free ports and stops it at the end.
Data: Binance's real 1m candles of 2020-03-12 placed on each of the last 29 days for two
symbols (83,520 candles, all inside the 30-day retention window).

* Ours: ``InfluxMirror.write_candle_table`` of each day partition, as the feed queues them
  (line protocol through influxdb-client's DataFrame serializer from exact-to-nearest float
  columns, gzip, durable SQLite outbox commit with fsync) then ``flush`` (``/write`` per
  5,000-line batch, deleting each batch once InfluxDB took it), into a fresh database.
* Baseline: the same lines, built beforehand, gzip-compressed in the same 5,000-line batches
  and POSTed to ``/write`` over one keep-alive ``http.client`` connection into a fresh
  database: what InfluxDB itself can take, with nothing durable in front of it.

Each side runs 3 times (a new database each time); the best run counts.
"""

from __future__ import annotations

import gzip
import http.client
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from benchmarks._common import free_port, report
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.candle_codec import to_table
from helios_pipeline.storage.candles import candle_columns
from helios_pipeline.storage.influx.lines import candle_table_lines
from helios_pipeline.storage.influx.mirror import InfluxMirror
from helios_pipeline_tests.influx_data import days_ago, real_candles

BATCH = 5000
DAYS = 29
SYMBOLS = ("BTC/USDT", "ETH/USDT")
RUNS = 3
CONFIG = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
"""


@contextmanager
def influxd(workdir: Path) -> Iterator[str]:
    """A throwaway influxd on free ports; yields its base URL."""
    binary = shutil.which("influxd")
    assert binary, "influxd is not installed (apt package influxdb)"
    port = free_port()
    config = workdir / "influxd.toml"
    config.write_text(CONFIG.format(root=workdir, rpc=free_port(), http=port))
    process = subprocess.Popen([binary, "run", "-config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=0.5):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, "influxd did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def partitions() -> list[tuple[str, pa.Table]]:
    """(symbol, day table) of every day partition, as the feed reads them."""
    out = []
    for days in range(DAYS, 0, -1):
        day = real_candles(shift_to=days_ago(days))
        for symbol in SYMBOLS:
            candles = [replace(c, symbol=symbol) for c in day]
            out.append((symbol, to_table(candle_columns(candles), "benchmark day")))
    return out


def all_lines(data: list[tuple[str, pa.Table]]) -> list[str]:
    return [line for symbol, table in data
            for line in candle_table_lines("binance", symbol, Timeframe.M1, table)]


def count(url: str, database: str) -> int:
    params = urllib.parse.urlencode({"db": database, "q": 'SELECT COUNT("close") FROM "ohlcv"'})
    with urllib.request.urlopen(f"{url}/query?{params}", timeout=60) as response:  # noqa: S310
        import json

        series = json.loads(response.read())["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def ours(url: str, database: str, data: list[tuple[str, pa.Table]], outbox: Path) -> float:
    mirror = InfluxMirror(url, database, outbox, batch_points=BATCH)
    began = time.perf_counter()
    for symbol, table in data:
        mirror.write_candle_table("binance", symbol, Timeframe.M1, table)
    flushed = mirror.flush()
    elapsed = time.perf_counter() - began
    mirror.close()
    points = sum(table.num_rows for _, table in data)
    assert (flushed.sent_points, flushed.pending_batches) == (points, 0), flushed
    return elapsed


def plain_post(url: str, database: str, lines: list[str]) -> float:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    create = urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'})
    conn.request("POST", f"/query?{create}")
    assert conn.getresponse().read() is not None
    path = f"/write?db={database}&precision=ms"
    headers = {"Content-Encoding": "gzip"}
    began = time.perf_counter()
    for start in range(0, len(lines), BATCH):
        body = gzip.compress("\n".join(lines[start:start + BATCH]).encode(), 1)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 204, response.status
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed


def main() -> None:
    data = partitions()
    lines = all_lines(data)
    with tempfile.TemporaryDirectory() as tmp, influxd(Path(tmp)) as url:
        ours_s, base_s = [], []
        for run in range(RUNS):
            base_s.append(plain_post(url, f"plain_{run}", lines))
            ours_s.append(ours(url, f"ours_{run}", data, Path(tmp) / f"outbox_{run}"))
            assert count(url, f"ours_{run}") == count(url, f"plain_{run}") == len(lines)
        build_s = min(_time(lambda: all_lines(data)) for _ in range(RUNS))
    points = len(lines)
    print(f"{points:,} candles, batches of {BATCH:,}; line building alone: "
          f"{points / build_s:,.0f} points/s")
    report("influx mirror (queue durably + send)", points / min(ours_s), points / min(base_s),
           "points/s", "plain gzip POST of the same lines", higher_is_better=True)


def _time(fn: object) -> float:
    assert callable(fn)
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
