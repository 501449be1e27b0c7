"""`helios stream` SIGKILLed at random moments, again and again: no acknowledged tick is lost.

The service runs as a subprocess (the real CLI) against the simulated exchange's websockets and a
real redis-server, logging every acknowledged tick (``--ack-log``: ``symbol kind seq``, fsynced
per batch after the WAL fsync). It is killed at a random moment, twelve times (three of them
during start-up, the others once acknowledgements flow), restarted each time on the same data
folder; a last run stops gracefully on SIGTERM.
Afterwards every acknowledged tick is in the WAL and in Redis, and none is in Redis twice.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
from helios_pipeline.storage.hot.codec import decode_tick, peek_identity
from helios_pipeline.storage.hot.keys import stream_key
from helios_pipeline.storage.hot.store import seq_from_stream_id
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.paths import wal_dir
from helios_pipeline_tests.conftest import REPO_ROOT

log = logging.getLogger(__name__)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT")
KILLS = 12
Identity = tuple[str, str, int]


@pytest.fixture(scope="module")
def exchange() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, ws_config=WsConfig(trades_per_second=20.0)) as sim:
        yield sim


def start(sim: SimExchangeServer, data: Path, redis_url: str,
          ack_log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HELIOS_EXCHANGE_URL": sim.base_url, "HELIOS_REDIS_URL": redis_url,
           "HELIOS_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "helios_pipeline.cli", "stream", "--symbols",
               ",".join(SYMBOLS), "--ack-log", str(ack_log), "--status-every", "60"]
    log = (ack_log.parent / f"{ack_log.stem}.out").open("wb")
    return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log, stderr=log)


def complete_lines(path: Path) -> list[Identity]:
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # a line torn by the kill has no newline
    return [(s, k, int(q)) for s, k, q in (line.split(" ") for line in lines)]


def wait_for_acks(process: subprocess.Popen[bytes], ack_log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not complete_lines(ack_log):
        if process.poll() is not None:
            out = (ack_log.parent / f"{ack_log.stem}.out").read_text()
            pytest.fail(f"helios stream exited with {process.returncode}:\n{out}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"No acknowledgement within {timeout_s} s")
        time.sleep(0.02)


def in_redis(url: str) -> tuple[Counter[Identity], Counter[tuple[str, int | None]]]:
    client = redis.Redis.from_url(url)
    identities: Counter[Identity] = Counter()
    trades: Counter[tuple[str, int | None]] = Counter()
    try:
        for symbol in SYMBOLS:
            for kind in ("trade", "book", "ticker"):
                for entry_id, fields in client.xrange(stream_key("binance", symbol, kind)):
                    tick = decode_tick(fields[b"t"])
                    assert seq_from_stream_id(entry_id) == tick.seq
                    identities[(symbol, kind, tick.seq)] += 1
                    if kind == "trade":
                        trades[(symbol, tick.event_id)] += 1
    finally:
        client.close()
    return identities, trades


def in_wal(data: Path) -> set[Identity]:
    with WriteAheadLog(wal_dir(data, "stream-binance")) as wal:
        return {(s, k, q) for _, payload in wal.records()
                for _, s, k, q in [peek_identity(payload)]}


def test_sigkill_at_random_moments_loses_no_acknowledged_tick(
        exchange: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    data = tmp_path / "data"
    acks: list[Identity] = []
    started = time.monotonic()
    for cycle in range(KILLS):
        ack_log = tmp_path / f"acks-{cycle:02d}.log"
        process = start(exchange, data, redis_url, ack_log)
        if cycle % 4 == 3:  # now and then during start-up: imports, WAL recovery, replay
            time.sleep(rng.uniform(0.1, 1.5))
        else:  # otherwise while acknowledgements flow
            wait_for_acks(process, ack_log, 30)
            time.sleep(rng.uniform(0.0, 1.2))
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        acks += complete_lines(ack_log)
    final_log = tmp_path / "acks-final.log"
    final = start(exchange, data, redis_url, final_log)  # replays what Redis lacks, streams ...
    wait_for_acks(final, final_log, 30)
    time.sleep(1.0)
    final.send_signal(signal.SIGTERM)  # ... and stops gracefully: flush to Redis, close the WAL
    assert final.wait(60) == 0, (tmp_path / "acks-final.out").read_text()
    acks += complete_lines(final_log)
    health = redis.Redis.from_url(redis_url).hgetall("helios:binance:stream_health")
    assert health[b"status"] == b"stopped"
    assert json.loads(health[b"writer"])["pending"] == 0  # Redis held everything at the end
    elapsed = time.monotonic() - started

    assert len(set(acks)) == len(acks), f"seed {seed}: a seq was acknowledged twice"
    logged = in_wal(data)
    assert [a for a in acks if a not in logged] == [], f"seed {seed}: acked but not in the WAL"
    identities, trades = in_redis(redis_url)
    missing = [a for a in acks if identities[a] != 1]
    assert missing == [], f"seed {seed}: acked ticks missing from Redis"
    assert max(identities.values()) == 1
    assert max(trades.values()) == 1, f"seed {seed}: a trade is in Redis twice"
    assert len(acks) > KILLS * 5
    log.info("%d SIGKILLs in %.1f s (seed %d): %d acknowledged ticks, %d in Redis, each once",
             KILLS, elapsed, seed, len(acks), sum(identities.values()))
