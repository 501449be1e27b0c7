"""Live indicators in the stream service: what a closed minute and a (re)start cost.

1. Per closed 1m candle, 1m + 5m + 1h series (``LiveIndicators.on_candles`` + ``finalize``, the
   bucket aggregation and the bookkeeping included), 200 symbols x 180 minutes with ``Decimal``
   prices, vs the bare ``IndicatorSet.update`` calls the same candles need (1 + 1/5 + 1/60 per
   minute) in the same run. The clock checks between candles are timed too: ``finalize`` when
   nothing is due (what the candle loop does every 0.25 s) vs ``LiveCandles.close_due`` for the
   same 200 symbols (the check the loop already made).
2. Warm start of 50 symbols, each with 4 hours of live 1m candles in a throwaway redis-server:
   ``warm_start`` (three timeframes) vs reading the same candles with ``load_live_candles``.

Run from the project root: ``python -m benchmarks.bench_live_indicators`` (about a minute).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import redis

from benchmarks._common import best_of, redis_server, report
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.realtime.live import LiveCandles
from helios_pipeline.realtime.live_indicators import LiveIndicators, warm_start
from helios_pipeline.signals.frame import IndicatorSet
from helios_pipeline.storage.hot.keys import candle_key
from helios_pipeline.storage.hot.live_candles import (
    HotCandleWriter,
    encode_candle,
    load_live_candles,
)
from helios_pipeline.storage.hot.live_indicators import HotIndicatorWriter

SYMBOLS = [f"C{i:03d}/USDT" for i in range(200)]
MINUTES = 180
TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.H1)
START_MS = 1_733_580_000_000 - 1_733_580_000_000 % 3_600_000
TOLERANCE_MS = 2_000


def walk(symbol: str, minutes: int, start_ms: int) -> list[LiveCandle]:
    """A random walk of live candles with exact decimal prices."""
    rng = random.Random(symbol)
    price, out = 30_000.0, []
    for i in range(minutes):
        price *= 1 + rng.gauss(0, 0.001)
        high, low = price * (1 + abs(rng.gauss(0, 0.0005))), price * (1 - abs(rng.gauss(0, 0.0005)))
        opened = start_ms + i * MINUTE_MS
        p = [Decimal(f"{x:.2f}") for x in (price, high, low, price)]
        out.append(LiveCandle(symbol, opened, p[0], max(p), min(p), p[3], Decimal("1.5"), 10,
                              opened, opened + MINUTE_MS - 1, 1, False, opened + MINUTE_MS))
    return out


def closed_minute_cost(candles: dict[str, list[LiveCandle]]) -> tuple[float, float]:
    """(ours, baseline) seconds per symbol-minute."""
    def ours() -> None:
        live = LiveIndicators(SYMBOLS, TIMEFRAMES, writer, TOLERANCE_MS)
        for i in range(MINUTES):
            live.on_candles([candles[s][i] for s in SYMBOLS])
            live.finalize(START_MS + (i + 1) * MINUTE_MS + TOLERANCE_MS + 1)

    def baseline() -> None:
        sets = {s: [IndicatorSet() for _ in TIMEFRAMES] for s in SYMBOLS}
        for i in range(MINUTES):
            for s in SYMBOLS:
                one, five, hour = sets[s]
                candle = candles[s][i]
                one.update(candle)
                if i % 5 == 4:
                    five.update(candle)
                if i % 60 == 59:
                    hour.update(candle)

    writer = HotIndicatorWriter("redis://127.0.0.1:1/0", "binance", 3_600_000)  # never flushed
    count = len(SYMBOLS) * MINUTES
    return best_of(ours, repeat=3) / count, best_of(baseline, repeat=3) / count


def idle_check_cost() -> tuple[float, float]:
    """(ours, baseline) seconds per clock check with nothing due, 200 symbols."""
    writer = HotIndicatorWriter("redis://127.0.0.1:1/0", "binance", 3_600_000)
    live = LiveIndicators(SYMBOLS, TIMEFRAMES, writer, TOLERANCE_MS)
    candles = LiveCandles(SYMBOLS, HotCandleWriter("redis://127.0.0.1:1/0", "binance",
                                                   3_600_000), TOLERANCE_MS, START_MS)
    clock = START_MS + 10_000
    return (best_of(lambda: live.finalize(clock), repeat=5, number=10_000),
            best_of(lambda: candles.close_due(clock), repeat=5, number=1_000))


def warm_start_cost(workdir: Path) -> tuple[float, float, int]:
    """(ours, baseline) seconds to warm 50 symbols from Redis, and the candles fed."""
    symbols = SYMBOLS[:50]
    with redis_server(workdir) as port:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port)
        now_ms = int(time.time() * 1000)
        first = now_ms - now_ms % MINUTE_MS - 240 * MINUTE_MS
        for symbol in symbols:
            client.hset(candle_key("binance", symbol), mapping={
                str(c.open_ms): encode_candle(c) for c in walk(symbol, 240, first)})
        fed = 0

        def ours() -> None:
            nonlocal fed
            writer = HotIndicatorWriter(url, "binance", 600 * MINUTE_MS)
            live = LiveIndicators(symbols, TIMEFRAMES, writer, TOLERANCE_MS)
            fed = warm_start(live, workdir / "data", url, "binance", 600 * MINUTE_MS, now_ms,
                             250)
            asyncio.run(writer.aclose())

        ours_s = best_of(ours, repeat=3)
        base_s = best_of(lambda: [load_live_candles(client, "binance", s) for s in symbols],
                         repeat=3)
        client.close()
    return ours_s, base_s, fed


def main() -> None:
    """Run and print every figure."""
    candles = {s: walk(s, MINUTES, START_MS) for s in SYMBOLS}
    ours, base = closed_minute_cost(candles)
    report("closed 1m candle, 1m+5m+1h series, per symbol", ours * 1e6, base * 1e6, "us",
           "bare IndicatorSet.update calls")
    ours, base = idle_check_cost()
    report("clock check with nothing due, 200 symbols", ours * 1e6, base * 1e6, "us",
           "LiveCandles.close_due, same symbols")
    with tempfile.TemporaryDirectory() as tmp:
        ours, base, fed = warm_start_cost(Path(tmp))
    report(f"warm start, 50 symbols x 4 h in Redis ({fed} candles fed)", ours * 1e3,
           base * 1e3, "ms", "load_live_candles of the same symbols")


if __name__ == "__main__":
    main()
