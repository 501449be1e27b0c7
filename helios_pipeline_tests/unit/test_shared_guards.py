"""One breaker, limiter and in-flight cap per exchange for every client of the process."""

from __future__ import annotations

import asyncio
import threading
import time

from helios_pipeline.defs.resources import ExchangeResource
from helios_pipeline.exchanges.breaker import CircuitState
from helios_pipeline.exchanges.shared import InFlightCap


def test_clients_of_a_resource_share_breaker_limiter_and_cap() -> None:
    resource = ExchangeResource(exchange_id="binance", base_url="http://127.0.0.1:9",
                                max_in_flight=3)
    first, second = resource.client(), resource.client()
    assert first.breaker is second.breaker
    assert first.limiter is second.limiter
    for _ in range(first.breaker.failure_threshold):
        first.breaker.record_failure()
    assert second.breaker.state is CircuitState.OPEN  # one run's open circuit holds for the next
    other = ExchangeResource(exchange_id="binance", base_url="http://127.0.0.1:10").client()
    assert other.breaker is not first.breaker  # another address, another budget


def test_the_cap_holds_across_threads_and_event_loops() -> None:
    cap = InFlightCap(2)
    inside, peak, lock = 0, 0, threading.Lock()

    async def request() -> None:
        nonlocal inside, peak
        async with cap:
            with lock:
                inside += 1
                peak = max(peak, inside)
            await asyncio.sleep(0.01)
            with lock:
                inside -= 1

    async def many() -> None:
        await asyncio.gather(*(request() for _ in range(10)))

    threads = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2
    assert time.monotonic() - started >= 30 * 0.01 / 2  # 30 requests, 2 at a time
