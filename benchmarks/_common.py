"""Shared helpers for benchmarks: timing and the ours-vs-baseline line."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
