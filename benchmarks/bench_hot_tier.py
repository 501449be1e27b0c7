"""Hot tier: durable tick writes into Redis, latest-price reads, many concurrent readers.

Starts its own redis-server (no persistence) on a free port and stops it at the end.

1. Sustained writes: ticks/s through ``DurableTickWriter`` (seq assignment, WAL append + fsync
   group commit, acknowledgement, guarded Lua push into per-symbol streams with trimming and the
   latest hash) until Redis holds all of them; 20 symbols, trades and tickers, batches of 1,000
   from one producer, no validation hook. The ticks are built before timing (that is the
   producer's cost). Baseline: ``redis-benchmark -P 16 XADD helios:bench * price 1``, Redis's own
   C client pipelining bare XADDs, measured in the same run: the server's ceiling for XADD.
2. ``latest_price`` p50/p99 (one HGET + exact decimal parse) vs a raw redis-py GET of a key.
3. 100 reader threads calling ``latest_price`` for 2 s: total reads/s vs raw GETs the same way.
4. Acknowledgement latency of a 100-tick ``submit`` vs a bare write + fsync of the same bytes.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import redis

from benchmarks._common import redis_server, report
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.storage.hot.codec import encode_tick
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.writer import DurableTickWriter

SYMBOLS = [f"C{i:02d}/USDT" for i in range(20)]
TICKS = 600_000
BATCH = 1000
READERS = 100


def redis_benchmark_xadd(port: int) -> float:
    """Requests/s of ``redis-benchmark -P 16 -n 200000 -q XADD helios:bench * price 1``."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-P", "16", "-n", "200000", "-q",
         "XADD", "helios:bench", "*", "price", "1"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    found = re.findall(r"([\d.]+) requests per second", out)
    assert found, f"unexpected redis-benchmark output: {out!r}"
    return float(found[-1])


def make_ticks(count: int) -> list[Tick]:
    prices = [Decimal(f"{40000 + i}.{i % 100:02d}") for i in range(1000)]
    qty, start = Decimal("0.00150"), time.time_ns() // 1000
    return [
        Tick("binance", SYMBOLS[i % len(SYMBOLS)], "ticker" if i % 4 == 0 else "trade",
             (start + i) // 1000, start + i, price=prices[i % 1000], qty=qty,
             bid=prices[i % 1000], ask=prices[(i + 1) % 1000], event_id=i)
        for i in range(count)
    ]


def sustained_writes(url: str, folder: Path) -> float:
    ticks = make_ticks(TICKS)
    with WriteAheadLog(folder) as wal, DurableTickWriter(wal, HotStore(url)) as writer:
        assert writer.flush(10)
        began = time.perf_counter()
        for start in range(0, TICKS, BATCH):
            writer.submit(ticks[start:start + BATCH])
        assert writer.flush(120)
        elapsed = time.perf_counter() - began
        health = writer.health()
    assert health["in_redis"] == TICKS, health
    return TICKS / elapsed


def latencies_us(call: Callable[[], object], count: int = 20_000) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - began) / 1000)
    return sorted(samples)


def percentile(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(q * len(samples)))]


def concurrent_rate(call: Callable[[], object], threads: int = READERS, seconds: float = 2.0
                    ) -> float:
    counts = [0] * threads
    stop = threading.Event()

    def loop(slot: int) -> None:
        done = 0
        while not stop.is_set():
            call()
            done += 1
        counts[slot] = done

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def ack_latency(url: str, folder: Path) -> tuple[float, float]:
    """Median ms of a 100-tick submit, and of write + fsync of the same bytes to a plain file."""
    batches = [make_ticks(100) for _ in range(200)]
    ours, base = [], []
    with WriteAheadLog(folder / "ack") as wal, DurableTickWriter(wal, HotStore(url)) as writer:
        for batch in batches:
            began = time.perf_counter()
            writer.submit(batch)
            ours.append(time.perf_counter() - began)
    fd = os.open(folder / "plain.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for batch in batches:
            payload = b"".join(encode_tick(t, t.received_ts_us) for t in batch)
            began = time.perf_counter()
            os.write(fd, payload)
            os.fsync(fd)
            base.append(time.perf_counter() - began)
    finally:
        os.close(fd)
    return statistics.median(ours) * 1000, statistics.median(base) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as port:
        url = f"redis://127.0.0.1:{port}/0"
        raw = redis.Redis(port=port)
        baseline_xadd = redis_benchmark_xadd(port)
        raw.flushall()
        ours_rate = sustained_writes(url, Path(tmp) / "wal")
        report("hot tier sustained writes (WAL fsync + Redis)", ours_rate, baseline_xadd,
               "ticks/s", "redis-benchmark -P 16 bare XADD", goal=">= 100,000 ticks/s",
               higher_is_better=True)

        hot = HotStore(url)
        hot.client.flushall()
        hot.append([t.with_seq(t.received_ts_us) for t in make_ticks(400) if t.kind == "ticker"])
        raw.set("bench:price", encode_tick(make_ticks(1)[0]))
        ours = latencies_us(lambda: hot.latest_price("C07/USDT"))
        base = latencies_us(lambda: raw.get("bench:price"))
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            report(f"latest_price {name}", percentile(ours, q), percentile(base, q), "us",
                   "redis-py GET", goal="sub-millisecond")

        ours_readers = concurrent_rate(lambda: hot.latest_price("C07/USDT"))
        base_readers = concurrent_rate(lambda: raw.get("bench:price"))
        report(f"{READERS} concurrent readers", ours_readers, base_readers, "reads/s",
               "redis-py GET, same threads", higher_is_better=True)
        hot.close()
        raw.close()

        ours_ack, base_ack = ack_latency(url, Path(tmp))
        report("submit -> ack, 100 ticks", ours_ack, base_ack, "ms",
               "write + fsync of the same bytes, pre-encoded")


if __name__ == "__main__":
    main()
