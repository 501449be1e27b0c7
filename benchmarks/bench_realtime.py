"""Realtime path: end-to-end tick latency, and sustained validated ticks/s through the service path.

Starts its own redis-server (no persistence) on a free port and a simulated exchange in a
subprocess, and stops both at the end.

1. Latency. ``helios stream`` (a subprocess: ccxt.pro -> TickValidator -> WAL fsync -> Redis)
   streams the trades of 20 symbols at 10 trades/s each. This process subscribes to the same
   trades with a raw aiohttp websocket client (``timeUnit=MICROSECOND``, so ``E`` is the
   simulator's send time in microseconds) and reads the trade streams from Redis with
   ``XREAD BLOCK``. Per trade: ours = readable in Redis - sent; baseline = received by the raw
   client - sent (no ccxt, no validation, no Redis), same trades, same run.
2. Throughput. 300,000 trades of 50 symbols, built beforehand, go through the service's write
   path in this process: TickQueue -> TickPipeline (TickValidator per symbol + quarantine hook ->
   DurableTickWriter: seq, WAL append, fsync group commit -> pusher -> Lua script into Redis),
   timed until Redis holds them all. Then the same ticks through two such processes, each
   with the symbols ``helios stream --shards 2`` gives it and its own log (``stream-binance-
   1of2``...), started together and timed until Redis holds them all. Baseline:
   ``redis-benchmark -P 16`` bare XADDs (Redis's ceiling for XADD from a C client). The same
   ticks through the validators alone and through the writer alone (no validation hook) show
   where the time goes.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import redis

from benchmarks._common import free_port, redis_server, report
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.pipeline import TickPipeline
from helios_pipeline.realtime.queue import TickQueue
from helios_pipeline.realtime.shards import split_symbols
from helios_pipeline.storage.hot.codec import decode_tick
from helios_pipeline.storage.hot.keys import stream_key
from helios_pipeline.validation.scalar import TickValidator

ROOT = Path(__file__).resolve().parents[1]
LATENCY_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT",
                   "DOGE/USDT", "AVAX/USDT", "DOT/USDT", "LINK/USDT", "LTC/USDT", "TRX/USDT",
                   "ATOM/USDT", "NEAR/USDT", "UNI/USDT", "ETC/USDT", "FIL/USDT", "APT/USDT",
                   "ARB/USDT", "OP/USDT"]
RATE = 10.0
MEASURE_S = 15.0
THROUGHPUT_TICKS = 300_000
THROUGHPUT_SYMBOLS = [f"C{i:02d}/USDT" for i in range(50)]
BATCH = 5_000

SIM_SCRIPT = """
import sys, time
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
config = WsConfig(trades_per_second=float(sys.argv[2]))
sim = SimExchangeServer(port=int(sys.argv[1]), ws_config=config)
sim.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


@contextmanager
def sim_process() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT, str(port), str(RATE)],
                               cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        yield port
    finally:
        process.terminate()
        process.wait(10)


# --------------------------------------------------------------------------- 1. latency


async def raw_client(port: int, sent: dict[tuple[str, int], int], received: dict[
        tuple[str, int], int], stop: asyncio.Event) -> None:
    streams = "/".join(f"{s.replace('/', '').lower()}@trade" for s in LATENCY_SYMBOLS)
    url = f"ws://127.0.0.1:{port}/stream?streams={streams}&timeUnit=MICROSECOND"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            now_us = time.time_ns() // 1000
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)["data"]
            key = (data["s"], int(data["t"]))
            sent[key] = int(data["E"])
            received[key] = now_us


def redis_reader(port: int, seconds: float, results: Any) -> None:
    """Runs in its own process: XREAD the trade streams, note when each trade became readable."""
    client = redis.Redis(port=port)
    # From the start of each stream: "$" would skip entries added between two XREADs to a key
    # that has not answered yet.
    ids = {stream_key("binance", s, "trade"): "0-0" for s in LATENCY_SYMBOLS}
    seen: dict[tuple[str, int], tuple[int, int]] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = client.xread(ids, block=200, count=10_000)  # type: ignore[arg-type]
        now_us = time.time_ns() // 1000
        for key, entries in reply or []:
            for entry_id, fields in entries:
                tick = decode_tick(fields[b"t"])
                # (readable now, parsed by the service's ccxt at)
                seen[(tick.symbol.replace("/", ""), int(tick.event_id or 0))] = (
                    now_us, tick.received_ts_us)
                ids[key.decode()] = entry_id.decode()
    client.close()
    results.put(seen)


def start_service(sim_port: int, redis_port: int, data: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HELIOS_EXCHANGE_URL": f"http://127.0.0.1:{sim_port}",
           "HELIOS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "HELIOS_DATA_DIR": str(data)}
    return subprocess.Popen(
        [sys.executable, "-m", "helios_pipeline.cli", "stream", "--symbols",
         ",".join(LATENCY_SYMBOLS), "--kinds", "trade", "--status-every", "3600"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(sim_port: int, redis_port: int, data: Path) -> None:
    service = start_service(sim_port, redis_port, data)
    sent: dict[tuple[str, int], int] = {}
    received: dict[tuple[str, int], int] = {}
    results: Any = multiprocessing.Queue()
    try:
        client = redis.Redis(port=redis_port)
        while not client.exists(stream_key("binance", LATENCY_SYMBOLS[0], "trade")):
            time.sleep(0.1)  # the service is streaming
        client.close()
        reader = multiprocessing.Process(target=redis_reader,
                                         args=(redis_port, MEASURE_S + 4.0, results))
        reader.start()
        time.sleep(2.0)  # warm-up

        async def measure() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(raw_client(sim_port, sent, received, stop))
            await asyncio.sleep(MEASURE_S)
            stop.set()
            await task

        asyncio.run(measure())
        seen: dict[tuple[str, int], tuple[int, int]] = results.get(timeout=60)
        reader.join()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    summarize(sent, received, seen)


def summarize(sent: dict[tuple[str, int], int], received: dict[tuple[str, int], int],
              seen: dict[tuple[str, int], tuple[int, int]]) -> None:
    ours = [(seen[k][0] - e) / 1000 for k, e in sent.items() if k in seen]
    base = [(received[k] - e) / 1000 for k, e in sent.items()]
    print(f"latency samples: {len(base)} trades sent, {len(ours)} of them seen in Redis "
          f"({len(LATENCY_SYMBOLS)} symbols x {RATE:g} trades/s, {MEASURE_S:g} s)")
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        report(f"tick latency {name} (sim sends trade -> readable in Redis)",
               percentile(ours, q), percentile(base, q), "ms",
               "raw aiohttp ws client receives it, no ccxt/validation/Redis",
               goal="p99 < 10 ms" if name == "p99" else "")
    print(f"  ours: mean {statistics.fmean(ours):.2f} ms, max {max(ours):.2f} ms; "
          f"baseline: mean {statistics.fmean(base):.2f} ms, max {max(base):.2f} ms")
    to_ccxt = [(seen[k][1] - e) / 1000 for k, e in sent.items() if k in seen]
    to_redis = [(seen[k][0] - seen[k][1]) / 1000 for k in sent if k in seen]
    print(f"  where the time goes (p50 / p99): sim -> parsed by ccxt in the service "
          f"{percentile(to_ccxt, 0.5):.2f} / {percentile(to_ccxt, 0.99):.2f} ms; parsed -> "
          f"readable in Redis (queue, validation, WAL fsync, push) "
          f"{percentile(to_redis, 0.5):.2f} / {percentile(to_redis, 0.99):.2f} ms")


# --------------------------------------------------------------------------- 2. throughput


def make_ticks() -> list[Tick]:
    now_us = time.time_ns() // 1000
    ticks = []
    for i in range(THROUGHPUT_TICKS):
        symbol = THROUGHPUT_SYMBOLS[i % len(THROUGHPUT_SYMBOLS)]
        step = i // len(THROUGHPUT_SYMBOLS)
        price = Decimal(100_000 + (step * 7919) % 2000).scaleb(-2)
        ts_us = now_us - 2_000_000 + i * 6  # 300k ticks spread over the last 2 s
        ticks.append(Tick("binance", symbol, "trade", ts_us // 1000, ts_us, price,
                          Decimal("0.125"), event_id=i))
    return ticks


def count_in_redis(client: redis.Redis) -> int:
    return sum(int(client.xlen(stream_key("binance", s, "trade")))  # type: ignore[arg-type]
               for s in THROUGHPUT_SYMBOLS)


def write_through(pipeline: TickPipeline, ticks: list[Tick], validate: bool = True) -> None:
    """The service's write path: queue every tick, then durable batches of ``BATCH``.

    ``validate=False`` hands the batches to the durable writer directly (the breakdown's
    "writer alone").
    """
    queue = TickQueue(len(ticks))
    for tick in ticks:
        queue.offer(tick)
    writer = pipeline.writer
    assert writer is not None
    while len(queue):
        batch = queue.take(BATCH)
        if validate:
            pipeline.process(batch)
        else:
            writer.submit(batch)


def service_path(ticks: list[Tick], redis_port: int, data: Path, validate: bool) -> float:
    client = redis.Redis(port=redis_port)
    client.flushall()
    config = StreamConfig(symbols=tuple(THROUGHPUT_SYMBOLS), data_dir=data,
                          redis_url=f"redis://127.0.0.1:{redis_port}/0", queue_size=BATCH,
                          batch_max=BATCH)
    pipeline = TickPipeline(config, "bench")
    pipeline.open()
    started = time.perf_counter()
    write_through(pipeline, ticks, validate)
    while count_in_redis(client) < len(ticks):
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    assert not validate or pipeline.valid == len(ticks), pipeline.health()
    pipeline.close()
    client.close()
    shutil.rmtree(data)
    return len(ticks) / elapsed


def shard_worker(index: int, shards: int, redis_port: int, data: Path, ready: Any, go: Any,
                 done: Any) -> None:
    """One shard's write path (runs in its own process): its symbols' ticks, its own log."""
    mine = split_symbols(THROUGHPUT_SYMBOLS, shards)[index]
    ticks = [t for t in make_ticks() if t.symbol in mine]
    config = StreamConfig(symbols=mine, data_dir=data, shard=(index, shards),
                          redis_url=f"redis://127.0.0.1:{redis_port}/0", queue_size=BATCH,
                          batch_max=BATCH)
    pipeline = TickPipeline(config, "bench")
    pipeline.open()
    ready.put(index)
    go.wait()
    write_through(pipeline, ticks)
    pipeline.close(60)
    done.put(pipeline.valid)


def sharded_path(redis_port: int, data: Path, shards: int) -> float:
    """Ticks/s of ``shards`` processes writing their shares at once, until Redis holds all."""
    client = redis.Redis(port=redis_port)
    client.flushall()
    ready, done, go = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
    workers = [multiprocessing.Process(target=shard_worker,
                                       args=(i, shards, redis_port, data, ready, go, done))
               for i in split_symbols(THROUGHPUT_SYMBOLS, shards)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=60)  # every shard has opened its log and built its ticks
    started = time.perf_counter()
    go.set()
    while count_in_redis(client) < THROUGHPUT_TICKS:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join(60)
    assert sum(done.get(timeout=10) for _ in workers) == THROUGHPUT_TICKS
    client.close()
    shutil.rmtree(data)
    return THROUGHPUT_TICKS / elapsed


def validators_only(ticks: list[Tick]) -> float:
    validators = {s: TickValidator(s) for s in THROUGHPUT_SYMBOLS}
    started = time.perf_counter()
    for t in ticks:
        validators[t.symbol].check(t.exchange_ts_ms, t.received_ts_us // 1000, t.price, t.qty,
                                   t.price, t.price)
    return len(ticks) / (time.perf_counter() - started)


def redis_benchmark(port: int) -> float:
    binary = shutil.which("redis-benchmark")
    assert binary, "redis-benchmark is not installed (apt package redis-tools)"
    out = subprocess.run([binary, "-p", str(port), "-P", "16", "-n", "300000", "-q", "XADD",
                          "helios:bench", "*", "t", "1|binance|BTC/USDT|trade|0|0|0|1|1|||1"],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"([\d.]+) requests per second", out)
    assert match, out
    return float(match.group(1))


def throughput(redis_port: int, workdir: Path) -> None:
    ticks = make_ticks()
    ours = service_path(ticks, redis_port, workdir / "wal-a", validate=True)
    writer_only = service_path(ticks, redis_port, workdir / "wal-b", validate=False)
    validation = validators_only(ticks)
    sharded = sharded_path(redis_port, workdir / "wal-c", shards=2)
    baseline = redis_benchmark(redis_port)
    report("sustained validated ticks/s, one process (queue -> TickValidator -> WAL fsync -> "
           "Redis)", ours, baseline, "ticks/s", "redis-benchmark -P 16 bare XADD",
           goal=">= 100,000 ticks/s", higher_is_better=True)
    report("sustained validated ticks/s, two processes (helios stream --shards 2)", sharded,
           baseline, "ticks/s", "redis-benchmark -P 16 bare XADD", goal=">= 100,000 ticks/s",
           higher_is_better=True)
    print(f"  where the time goes: TickValidator alone {validation:,.0f} ticks/s "
          f"({1e6 / validation:.2f} us/tick); DurableTickWriter alone {writer_only:,.0f} "
          f"ticks/s ({1e6 / writer_only:.2f} us/tick); together {1e6 / ours:.2f} us/tick "
          "in one process (one GIL)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with redis_server(workdir) as redis_port:
            with sim_process() as sim_port:
                latency(sim_port, redis_port, workdir / "latency")
            throughput(redis_port, workdir)


if __name__ == "__main__":
    main()
