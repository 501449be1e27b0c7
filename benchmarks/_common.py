"""Shared helpers for benchmarks: timing and the ours-vs-baseline line."""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


def best_of(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Best wall time in seconds of ``number`` calls, over ``repeat`` tries."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time in seconds of one call over ``repeat`` tries."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, ours: float, baseline: float, unit: str, baseline_name: str,
           goal: str = "", higher_is_better: bool = False) -> None:
    """Print one result line: ours, baseline, ratio (ours / baseline) and the goal."""
    ratio = ours / baseline if baseline else float("nan")
    direction = "higher is better" if higher_is_better else "lower is better"
    print(f"{name}: ours {ours:,.3f} {unit} | baseline ({baseline_name}) {baseline:,.3f} {unit} "
          f"| ratio {ratio:.2f}x ({direction}){' | goal ' + goal if goal else ''}")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def redis_server(workdir: Path) -> Iterator[int]:
    """A throwaway redis-server on a free port (nothing kept on disk); yields the port."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (apt package redis-server)"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(workdir), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
