"""The read API (``helios serve``) beside the same answers without it, in the same run.

A week of synthetic 1m candles (``bench_query.synthetic_day``) and a ticker in a throwaway
redis-server. ``helios serve`` runs as its own process (a uvicorn worker, as users run it); a
client on one keep-alive connection measures, per request:

1. ``GET /v1/price/BTC-USDT``: p50/p99 vs a bare Starlette route on the same uvicorn returning
   a fixed JSON price (no token, rate limit, scope check, query or access log): the cost of the
   gate and the query. Also beside ``MarketDataQuery.latest_price`` in this process.
2. ``GET /v1/ohlcv/BTC-USDT`` of one day of 1m candles (1,440 rows as exact decimal strings):
   p50 vs ``MarketDataQuery.ohlcv`` of the same day in this process (no HTTP, no JSON).

Run from the project root: ``python -m benchmarks.bench_api`` (about a minute).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np

from benchmarks._common import free_port, redis_server, report
from benchmarks.bench_query import synthetic_day
from helios_pipeline.api.tokens import Scope, TokenStore, tokens_path
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Timeframe, days_between
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.catalog_rows import PartitionWrite
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.metadata import MetadataStore

SYMBOL = "BTC/USDT"
FIRST, LAST = date(2023, 1, 1), date(2023, 1, 7)
DAY = "start=2023-01-03T00:00Z&end=2023-01-04T00:00Z&timeframe=1m"
BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
ANSWER = {"symbol": "BTC/USDT", "exchange": "binance", "price": "42123.45", "tier": "hot"}
async def price(request): return JSONResponse(ANSWER)
app = Starlette(routes=[Route("/v1/price/{symbol}", price)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def write_week(root: Path) -> None:
    rng = np.random.default_rng(7)
    store, writes, price = CandleStore(root), [], 20_000.0
    for day in days_between(FIRST, LAST):
        table = synthetic_day(day, rng, price)
        price = float(table.column("close")[-1].as_py())
        stored = store.store_table(SYMBOL, Timeframe.M1, day, table)
        writes.append(PartitionWrite("binance", SYMBOL, Timeframe.M1, day, stored, "synthetic"))
    MetadataStore(root / "metadata.sqlite").record_partitions(writes)


@contextmanager
def process(args: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    """A server process, once it accepts connections on ``port``."""
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert child.poll() is None, child.communicate()[1]
                assert time.monotonic() < deadline, "the server did not listen within 60 s"
                time.sleep(0.1)
        yield
    finally:
        child.terminate()
        child.wait(timeout=30)


def interleaved(calls: list[Callable[[], object]], n: int) -> list[list[float]]:
    """Microseconds of each call, ``n`` rounds, the calls taking turns within each round."""
    out: list[list[float]] = [[] for _ in calls]
    for _ in range(n):
        for fn, times in zip(calls, out, strict=True):
            start = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - start) / 1000)
    return out


def getter(port: int, path: str, token: str | None = None) -> Callable[[], bytes]:
    """A GET on one keep-alive connection that checks the answer is a 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    def get() -> bytes:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body
        return body

    return get


def p(values: list[float], q: int) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_port:
        root = Path(tmp) / "data"
        write_week(root)
        url = f"redis://127.0.0.1:{redis_port}/0"
        hot, us = HotStore(url), time.time_ns() // 1000
        hot.append([Tick("binance", SYMBOL, "ticker", us // 1000, us, Decimal("42123.45"),
                         Decimal("1"), Decimal("42123.44"), Decimal("42123.46"), seq=us)])
        hot.close()
        token = TokenStore(tokens_path(root)).create(
            "bench", Scope.parse("*", "price,ohlcv"), rate_per_min=10**9)
        env = {**os.environ, "HELIOS_DATA_DIR": str(root), "HELIOS_REDIS_URL": url,
               "HELIOS_START_DATE": "2023-01-01"}
        ours_port, bare_port = free_port(), free_port()
        query = MarketDataQuery(root, redis_url=url, start_date="2023-01-01", cache_ttl_s=0)
        with process([sys.executable, "-m", "helios_pipeline.cli", "serve", "--port",
                      str(ours_port)], env, ours_port), \
                process([sys.executable, "-c", BARE_APP, str(bare_port)], env, bare_port):
            ours_price = getter(ours_port, "/v1/price/BTC-USDT", token)
            bare_price = getter(bare_port, "/v1/price/BTC-USDT")
            assert json.loads(ours_price()) == json.loads(bare_price())  # the same answer
            for _ in range(200):  # warm up
                ours_price()
                bare_price()
                query.latest_price(SYMBOL)
            ours, bare, direct = interleaved(  # each connection stays inside keep-alive
                [ours_price, bare_price, lambda: query.latest_price(SYMBOL)], 2000)
            report("GET /v1/price p50", p(ours, 50), p(bare, 50), "us",
                   "bare Starlette route, same uvicorn, fixed JSON")
            report("GET /v1/price p99", p(ours, 99), p(bare, 99), "us",
                   "bare Starlette route, same uvicorn, fixed JSON")
            report("GET /v1/price p50 vs in-process", p(ours, 50), p(direct, 50), "us",
                   "MarketDataQuery.latest_price in this process")
            day = getter(ours_port, f"/v1/ohlcv/BTC-USDT?{DAY}", token)
            assert len(json.loads(day())["candles"]) == 1440
            over_http, in_process = interleaved(
                [day, lambda: query.ohlcv(SYMBOL, "1m", "2023-01-03T00:00Z",
                                          "2023-01-04T00:00Z")], 50)
            report("GET /v1/ohlcv one day of 1m (1,440 rows) p50", p(over_http, 50) / 1000,
                   p(in_process, 50) / 1000, "ms", "MarketDataQuery.ohlcv in this process")
        query.close()


if __name__ == "__main__":
    main()
