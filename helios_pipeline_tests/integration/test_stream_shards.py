"""`helios stream --shards N`: symbols split over processes, and nothing lost when N changes.

Real parts: the CLI as subprocesses, the simulated exchange's websockets, a real redis-server
(stopped for part of a test to leave acknowledged ticks only in the shards' logs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.shards import ShardError, shard_of, split_symbols
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.sim.ws.routes import WsConfig
from helios_pipeline.storage.hot.health import read_health
from helios_pipeline.storage.paths import wal_dir
from helios_pipeline_tests.conftest import REPO_ROOT, RedisServer
from helios_pipeline_tests.integration.test_stream_kill9 import (
    SYMBOLS,
    Identity,
    complete_lines,
    in_redis,
)


@pytest.fixture(scope="module")
def exchange() -> Iterator[SimExchangeServer]:
    with SimExchangeServer(port=0, ws_config=WsConfig(trades_per_second=20.0)) as sim:
        yield sim


def stream(sim: SimExchangeServer, data: Path, redis_url: str, ack_log: Path,
           *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HELIOS_EXCHANGE_URL": sim.base_url, "HELIOS_REDIS_URL": redis_url,
           "HELIOS_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "helios_pipeline.cli", "stream", "--symbols",
               ",".join(SYMBOLS), "--kinds", "trade", "--ack-log", str(ack_log),
               "--status-every", "60", *args]
    out = (ack_log.parent / f"{ack_log.stem}.out").open("wb")
    return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)


def finish(process: subprocess.Popen[bytes], ack_log: Path, timeout_s: float = 60) -> str:
    code = process.wait(timeout_s)
    out = (ack_log.parent / f"{ack_log.stem}.out").read_text()
    assert code == 0, out
    return out


def ack_into_two_shard_logs(sim: SimExchangeServer, data: Path, redis_url: str,
                            tmp_path: Path) -> list[Identity]:
    """Run ``--shards 2`` (Redis already stopped) until 20 ticks are acknowledged, then stop it.

    Returns the acknowledged ticks: they are in the two shards' logs only.
    """
    ack_log = tmp_path / "acks-sharded.log"
    sharded = stream(sim, data, redis_url, ack_log, "--shards", "2")
    deadline = time.monotonic() + 60
    while len(complete_lines(ack_log)) < 20 and time.monotonic() < deadline:
        assert sharded.poll() is None, (tmp_path / "acks-sharded.out").read_text()
        time.sleep(0.2)
    sharded.send_signal(signal.SIGTERM)
    finish(sharded, ack_log)
    acks = complete_lines(ack_log)
    assert len(acks) >= 20
    return acks


def test_placement_depends_on_the_symbol_alone() -> None:
    many = [f"C{i:02d}/USDT" for i in range(60)]
    layout = split_symbols(many, 3)
    assert sorted(s for shard in layout.values() for s in shard) == sorted(many)
    assert set(layout) == {1, 2, 3}
    assert all(shard_of(s, 3) == i for i, shard in layout.items() for s in shard)
    assert split_symbols(many[:7], 3)[shard_of(many[0], 3)][0] == many[0]
    with pytest.raises(ShardError, match="--shards 0"):
        split_symbols(many, 0)


def test_two_shards_stream_every_symbol_once_with_their_own_logs(
        exchange: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    data, ack_log = tmp_path / "data", tmp_path / "acks.log"
    process = stream(exchange, data, redis_url, ack_log, "--shards", "2", "--duration", "6")
    deadline = time.monotonic() + 60
    client = redis.Redis.from_url(redis_url)
    health: dict[str, str] = {}
    while time.monotonic() < deadline and health.get("shards") != "2":
        time.sleep(0.2)
        health = read_health(client, "binance")
    out = finish(process, ack_log)
    assert "2 shards: 1of2 pid" in out
    assert "[1of2] stopped" in out
    assert "[2of2] stopped" in out

    assert health.get("shards") == "2", health  # both shards published, combined by the reader
    assert int(health["ticks"]) == int(health["1of2.ticks"]) + int(health["2of2.ticks"])
    acks = complete_lines(ack_log)
    assert acks
    assert len(set(acks)) == len(acks)
    identities, trades = in_redis(redis_url)
    assert [a for a in acks if identities[a] != 1] == []
    assert max(trades.values()) == 1
    assert {s for s, _, _ in acks} == set(SYMBOLS)
    for index, symbols in split_symbols(SYMBOLS, 2).items():
        name = StreamConfig(symbols=symbols, shard=(index, 2)).writer_name
        assert name == f"stream-binance-{index}of2"
        assert (wal_dir(data, name) / "LOCK").exists()
    client.close()


def test_changing_the_shard_count_replays_the_old_logs(
        exchange: SimExchangeServer, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    data = tmp_path / "data"
    redis_server.stop()  # acknowledged ticks stay in the two shards' logs only
    try:
        acks = ack_into_two_shard_logs(exchange, data, redis_url, tmp_path)
    finally:
        redis_server.start()  # empty: nothing was ever written to it
    assert sum(in_redis(redis_url)[0].values()) == 0

    second_log = tmp_path / "acks-single.log"
    out = finish(stream(exchange, data, redis_url, second_log, "--duration", "2"), second_log)
    for shard in {shard_of(symbol, 2) for symbol, _, _ in acks}:  # the logs holding acks
        assert f"replayed log stream-binance-{shard}of2 of another shard layout" in out
    identities, trades = in_redis(redis_url)
    assert [a for a in acks if identities[a] != 1] == []  # every tick acked by the shards
    assert max(identities.values()) == 1
    assert max(trades.values()) == 1


def test_a_new_layout_waits_for_redis_to_take_the_old_logs_first(
        exchange: SimExchangeServer, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    """Redis down at the re-layout: the new layout must not start (its writers would push higher
    stream ids and Redis would later refuse the old logs' ticks as already present)."""
    data = tmp_path / "data"
    redis_server.stop()
    try:
        acks = ack_into_two_shard_logs(exchange, data, redis_url, tmp_path)

        # One process now, Redis still down: it waits, saying so, and acknowledges nothing.
        second_log = tmp_path / "acks-single.log"
        single = stream(exchange, data, redis_url, second_log, "--duration", "3")
        output = tmp_path / "acks-single.out"
        deadline = time.monotonic() + 60
        while "waiting for Redis" not in output.read_text() and time.monotonic() < deadline:
            assert single.poll() is None, output.read_text()
            time.sleep(0.2)
        assert "waiting for Redis" in output.read_text()
        assert single.poll() is None
        assert complete_lines(second_log) == []
    finally:
        redis_server.start()  # empty: nothing was ever written to it
    out = finish(single, second_log, timeout_s=120)
    assert "replayed log stream-binance-" in out
    identities, trades = in_redis(redis_url)
    assert [a for a in acks if identities[a] != 1] == []  # every tick the shards acked
    assert [a for a in complete_lines(second_log) if identities[a] != 1] == []
    assert max(identities.values()) == 1
    assert max(trades.values()) == 1


def test_shards_stop_when_their_parent_is_killed(
        exchange: SimExchangeServer, tmp_path: Path, redis_url: str) -> None:
    data, ack_log = tmp_path / "data", tmp_path / "acks.log"
    parent = stream(exchange, data, redis_url, ack_log, "--shards", "2")
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while read_health(client, "binance").get("shards") != "2":
        assert parent.poll() is None, (tmp_path / "acks.out").read_text()
        assert time.monotonic() < deadline, "the two shards did not publish health"
        time.sleep(0.2)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 30
    health = read_health(client, "binance")
    while health.get("status") != "stopped":  # each shard noticed and stopped gracefully
        assert time.monotonic() < deadline, f"shards still running: {health.get('status')}"
        time.sleep(0.2)
        health = read_health(client, "binance")
    acks = complete_lines(ack_log)
    identities, _ = in_redis(redis_url)
    assert acks
    assert [a for a in acks if identities[a] != 1] == []  # they flushed before stopping
    client.close()
