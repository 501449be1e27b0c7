"""The InfluxDB test fixture: a real server that answers, and survives a stop and a restart."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

from helios_pipeline_tests.influx_server import InfluxServer


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)


def test_server_keeps_points_across_a_restart(influx: InfluxServer) -> None:
    database = influx.fresh_database()
    query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'})
    assert _post(f"{influx.url}/query?{query}", b"") == 200
    now_ms = int(time.time() * 1000)
    lines = f"probe,tag=a close=1.5 {now_ms}\nprobe,tag=a close=2.5 {now_ms + 1}\n".encode()
    assert _post(f"{influx.url}/write?db={database}&precision=ms", lines) == 204

    influx.stop()
    assert not influx.is_up()
    influx.start()

    assert influx.count(database, "probe") == 2
    values = influx.query(database, 'SELECT "close" FROM "probe"')[0]["values"]
    assert [row[1] for row in values] == [1.5, 2.5]
