"""The real websocket path: what ``helios stream`` lands in Redis per second, beside a plain script.

Everything runs on this machine: the simulated exchange (its own process, Binance's websocket
format), a redis-server, and the client under test, one after the other against the same
offered load. The simulator sends the trades of the 50 symbols ``helios stream --top 50`` picks,
each at ``RATE`` trades per second (``WsConfig(trades_per_second=...)``).

* ours: ``helios stream --top 50 --kinds trade`` (ccxt.pro parses each frame with exact
  decimals -> TickValidator -> write-ahead log with fsync -> Redis), one process and then
  ``--shards 2``; the figure is trades readable in Redis per second over a ``MEASURE_S`` window
  after a ``WARMUP_S`` start, counted with ``XLEN`` over the trade streams. Shed ticks (the
  bounded queue dropping under overload) are read from the service's health.
* baseline: what a user would write: a ccxt.pro script with one ``watch_trades(symbol)`` loop
  per symbol (ccxt's own pattern) for the same 50 symbols, counting the trades it gets (floats,
  no validation, no storage), over the same window.

The simulator shares the two cores with the client, so neither figure is the exchange's rate:
the ratio is the part that says what validation and durable storage cost on the real path.

Run from the project root: ``python -m benchmarks.bench_stream_ws`` (about 3 minutes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks._common import free_port, redis_server, report
from helios_pipeline.storage.hot.health import read_health

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = 50
RATES = (20.0, 100.0)  # trades per second per symbol
WARMUP_S = 8.0
MEASURE_S = 15.0

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

PLAIN_SCRIPT = """
import asyncio, sys, time
import ccxt
import ccxt.pro

async def main(port, warmup, measure, count):
    exchange = ccxt.pro.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    base = f"http://127.0.0.1:{port}"
    for key, value in list(exchange.urls["api"].items()):
        if isinstance(value, str) and value.startswith("http"):
            exchange.urls["api"][key] = base + "/" + value.split("://", 1)[1].partition("/")[2]
    exchange.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{port}/ws"
    tickers = await exchange.fetch_tickers()
    usdt = [s for s, t in tickers.items() if s.endswith("/USDT")]
    symbols = sorted(usdt, key=lambda s: -(tickers[s].get("quoteVolume") or 0))[:count]
    counts = {"received": 0, "drops": 0}

    async def watch(symbol):  # the canonical ccxt.pro loop, one per symbol
        while True:
            try:
                trades = await exchange.watch_trades(symbol)
            except ccxt.NetworkError:  # e.g. dropped as a slow consumer: subscribe again
                counts["drops"] += 1
                continue
            counts["received"] += len(trades)

    tasks = [asyncio.create_task(watch(s)) for s in symbols]
    await asyncio.sleep(warmup)
    before, counted_from = counts["received"], time.monotonic()
    await asyncio.sleep(measure)
    received, elapsed = counts["received"] - before, time.monotonic() - counted_from
    for task in tasks:
        task.cancel()
    await exchange.close()
    drops = counts["drops"]
    print(received / elapsed, drops)

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
"""


def start_sim(rate: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT, str(port), str(rate)],
                               cwd=ROOT, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process, port


def trades_in_redis(client: redis.Redis) -> int:
    keys = list(client.scan_iter(match="helios:binance:*:trade", count=1000))
    return sum(int(client.xlen(k)) for k in keys)


def wait_until_streaming(client: redis.Redis, shards: int, process: subprocess.Popen[bytes],
                         output: Path) -> None:
    """Until every process publishes health (each has loaded markets and subscribed)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = read_health(client, "binance")
        if health and (shards == 1 or health.get("shards") == str(shards)):
            return
        if process.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"helios stream did not start:\n{output.read_text()[-3000:]}")


def ours(sim_port: int, redis_port: int, data: Path, shards: int) -> tuple[float, int]:
    """Trades/s readable in Redis, and ticks shed, for ``helios stream`` with ``shards``."""
    client = redis.Redis(port=redis_port)
    client.flushall()
    env = {**os.environ, "HELIOS_EXCHANGE_URL": f"http://127.0.0.1:{sim_port}",
           "HELIOS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "HELIOS_DATA_DIR": str(data)}
    data.mkdir(parents=True)
    output = data / "stream.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "helios_pipeline.cli", "stream", "--top", str(SYMBOLS),
         "--kinds", "trade", "--shards", str(shards), "--status-every", "3600"],
        cwd=ROOT, env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until_streaming(client, shards, process, output)
        time.sleep(WARMUP_S)
        first, started = trades_in_redis(client), time.monotonic()
        time.sleep(MEASURE_S)
        last, elapsed = trades_in_redis(client), time.monotonic() - started
        shed = int(read_health(client, "binance").get("shed") or 0)
    finally:
        process.send_signal(signal.SIGINT)  # how an operator stops it (Ctrl-C)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            tail = output.read_text()[-3000:]
            raise RuntimeError(f"helios stream did not stop:\n{tail}") from None
        client.close()
    return (last - first) / elapsed, shed


def plain(sim_port: int) -> tuple[float, int]:
    """Trades/s the plain script received, and how often the simulator dropped it."""
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_SCRIPT, str(sim_port), str(WARMUP_S), str(MEASURE_S),
         str(SYMBOLS)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the plain ccxt.pro script failed:\n{done.stderr[-3000:]}")
    rate, drops = done.stdout.strip().splitlines()[-1].split()
    return float(rate), int(drops)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_port:
        for rate in RATES:
            sim, sim_port = start_sim(rate)
            try:
                baseline, drops = plain(sim_port)
                for shards in (1, 2):
                    landed, shed = ours(sim_port, redis_port, Path(tmp) / f"data-{rate}-{shards}",
                                        shards)
                    report(f"trades/s into Redis via websockets, {SYMBOLS} symbols offered "
                           f"{SYMBOLS * rate:,.0f}/s, {shards} process(es), shed {shed:,}",
                           landed, baseline, "trades/s",
                           "plain ccxt.pro watch_trades loops, counted only, "
                           f"dropped as a slow consumer {drops} time(s)",
                           higher_is_better=True)
            finally:
                sim.terminate()
                sim.wait(10)


if __name__ == "__main__":
    main()
