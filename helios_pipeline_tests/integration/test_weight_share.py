"""Batch work yields the request-weight budget to the live path (issue 14).

The simulated Binance counts request weight per minute window for this IP, whoever sends it,
and reports it in ``X-MBX-USED-WEIGHT-1M``. A live client (the whole budget: 80% of the limit)
and a batch client (``HELIOS_BATCH_WEIGHT_SHARE=0.5``) share the window: once the window holds
more than half of the limit, the batch client waits for the next minute, while the live client
goes on up to its 80%.
"""

from __future__ import annotations

import asyncio

from helios_pipeline.defs.build import build_defs
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.ratelimit import AdaptiveRateLimiter
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer

MINUTE_MS = 60_000
NOW_MINUTE = 1_717_243_200_000 - 15 * MINUTE_MS  # 2024-06-01 11:45 UTC
LIMIT = 100


class Clock:
    """One settable wall clock for the simulator's weight windows and both clients."""

    def __init__(self) -> None:
        self.ms = NOW_MINUTE + 10_000

    def __call__(self) -> int:
        return self.ms

    def seconds(self) -> float:
        return self.ms / 1000

    async def sleep(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


def client(sim: SimExchangeServer, clock: Clock, share: float | None) -> ExchangeClient:
    limiter = AdaptiveRateLimiter("binance", weight_limit=LIMIT, clock=clock.seconds,
                                  sleep=clock.sleep)
    return ExchangeClient("binance", base_url=sim.base_url, limiter=limiter, clock=clock.seconds,
                          sleep=clock.sleep, weight_share=share)


async def one_page(exchange: ExchangeClient) -> None:
    """One klines request (weight 2): two closed candles."""
    start = NOW_MINUTE - 10 * MINUTE_MS
    assert len(await exchange.fetch_ohlcv("BTC/USDT", Timeframe.M1, start,
                                          start + 2 * MINUTE_MS)) == 2


def test_batch_requests_wait_above_their_share_while_the_live_path_goes_on() -> None:
    clock = Clock()
    with SimExchangeServer(now_ms=lambda: NOW_MINUTE, weight_limit=LIMIT,
                           wall_clock_ms=clock) as sim:
        async def scenario() -> None:
            async with client(sim, clock, None) as live, client(sim, clock, 0.5) as batch:
                await live.load_markets()  # 20
                for _ in range(10):
                    await one_page(live)  # 40
                await batch.load_markets()  # 60: above the batch share of 50
                for _ in range(10):
                    await one_page(live)  # 80: the live budget, reached without a wait
                live_limiter = live.limiter
                batch_limiter = batch.limiter
                assert live_limiter.waits == 0
                assert sim.stats()["weight_used_1m"] == 80
                window = clock.ms - clock.ms % MINUTE_MS

                await one_page(batch)  # waits for the next minute, then goes
                assert batch_limiter.waits == 1
                assert clock.ms == window + MINUTE_MS
                assert sim.stats()["weight_used_1m"] == 2
                assert batch_limiter.weight_spent == 22

        asyncio.run(scenario())


def test_dagster_runs_use_the_batch_share_and_the_live_settings_do_not() -> None:
    settings = Settings.from_env({"HELIOS_BATCH_WEIGHT_SHARE": "0.4"})
    assert settings.exchange_config().weight_share is None  # the stream's
    defs = build_defs(settings)
    assert defs.resources["exchange"].weight_share == 0.4  # type: ignore[attr-defined]
