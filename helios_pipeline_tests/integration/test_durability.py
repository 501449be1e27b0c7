"""No acknowledged tick is lost: Redis outages, Redis wipes and kill -9 of the writer.

Everything runs against a real redis-server (the session fixture, stopped and restarted here) and
real files; the writer is killed with SIGKILL in a subprocess.
"""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from helios_pipeline.domain.ticks import KINDS, Tick
from helios_pipeline.storage.hot.codec import decode_tick
from helios_pipeline.storage.hot.keys import stream_key
from helios_pipeline.storage.hot.store import HotStore, seq_from_stream_id
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.writer import DurableTickWriter
from helios_pipeline_tests.conftest import REPO_ROOT, RedisServer, free_port

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
Identity = tuple[str, str, str, int]


def tick_batch(counter: Iterator[int], size: int, rng: random.Random) -> list[Tick]:
    ticks = []
    for _ in range(size):
        n = next(counter)
        now = time.time_ns() // 1000
        ticks.append(Tick("binance", rng.choice(SYMBOLS), rng.choice(KINDS), now // 1000, now,
                          price=Decimal(rng.randint(1, 10**7)) / 100, qty=Decimal("0.25"),
                          event_id=n))
    return ticks


def redis_ticks(url: str) -> list[Tick]:
    """Every tick in every stream, checking that each entry id is its tick's seq."""
    client = redis.Redis.from_url(url)
    found = []
    try:
        for symbol, kind in itertools.product(SYMBOLS, KINDS):
            for entry_id, fields in client.xrange(stream_key("binance", symbol, kind)):
                tick = decode_tick(fields[b"t"])
                assert seq_from_stream_id(entry_id) == tick.seq
                found.append(tick)
    finally:
        client.close()
    return found


def assert_exactly_once(in_redis: list[Tick], acked: list[Tick]) -> None:
    identities = Counter(t.identity for t in in_redis)
    assert max(identities.values()) == 1
    assert max(Counter(t.event_id for t in in_redis).values()) == 1
    assert set(identities) == {t.identity for t in acked}
    by_identity = {t.identity: t for t in in_redis}
    assert all(by_identity[t.identity] == t for t in acked)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_redis_outage_mid_stream_loses_nothing(
    tmp_path: Path, redis_server: RedisServer, redis_url: str
) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    writer = DurableTickWriter(wal, HotStore(redis_url, socket_timeout_s=1.0),
                               checkpoint_interval_s=0.1)
    writer.recover()
    acked: list[Tick] = []
    stop = threading.Event()
    counter, rng = itertools.count(1), random.Random(7)

    def produce() -> None:
        while not stop.is_set():
            acked.extend(writer.submit(tick_batch(counter, 50, rng)).ticks)
            time.sleep(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while len(acked) < 3000:
            time.sleep(0.01)
        redis_server.stop()  # mid-stream: the producer keeps submitting
        during = len(acked)
        time.sleep(1.0)
        health = writer.health()
        assert health["redis_up"] is False
        assert isinstance(health["redis_down_since"], float)
        assert "Error" in str(health["last_error"])
        assert int(str(health["pending"])) > 0
        assert len(acked) > during + 1000  # acknowledgements never waited for Redis
        redis_server.start()  # same port, empty: Redis keeps nothing on disk
        time.sleep(0.5)
    finally:
        stop.set()
        producer.join()
    assert writer.flush(30)
    health = writer.health()
    assert (health["redis_up"], health["pending"], health["redis_down_since"]) == (True, 0, None)
    assert int(str(health["rewinds"])) >= 1  # it noticed that Redis came back empty
    writer.close()
    wal.close()
    assert_exactly_once(redis_ticks(redis_url), acked)


def test_recover_replays_what_redis_lacks_exactly_once(
    tmp_path: Path, redis_url: str, raw: redis.Redis
) -> None:
    folder, rng, counter = tmp_path / "wal", random.Random(3), itertools.count(1)
    acked: list[Tick] = []
    # 1. Redis unreachable: acknowledged into the log only.
    with WriteAheadLog(folder) as wal:
        nowhere = HotStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5)
        writer = DurableTickWriter(wal, nowhere)
        writer.recover()
        for _ in range(5):
            acked += writer.submit(tick_batch(counter, 40, rng)).ticks
        assert writer.close(timeout_s=0.2) is False
    assert redis_ticks(redis_url) == []
    # 2. Restart against the real Redis: recover() replays the log.
    with WriteAheadLog(folder) as wal:
        writer = DurableTickWriter(wal, HotStore(redis_url))
        assert writer.recover() == 200
        acked += writer.submit(tick_batch(counter, 40, rng)).ticks
        assert writer.flush(10)
        assert writer.close() is True
    assert_exactly_once(redis_ticks(redis_url), acked)
    # 3. Redis flushed while no writer runs: the next start refills it, still exactly once.
    raw.flushall()
    with WriteAheadLog(folder) as wal, DurableTickWriter(wal, HotStore(redis_url)) as writer:
        assert writer.flush(10)
        assert writer.health()["in_redis"] == len(acked)
    assert_exactly_once(redis_ticks(redis_url), acked)
    # 4. Nothing lost, nothing to do: a restart adds nothing.
    with WriteAheadLog(folder) as wal, DurableTickWriter(wal, HotStore(redis_url)) as writer:
        assert writer.flush(10)
        assert writer.health()["in_redis"] == 0
    assert_exactly_once(redis_ticks(redis_url), acked)


def test_a_writer_new_to_a_stream_starts_above_its_last_id_in_redis(
    tmp_path: Path, redis_url: str
) -> None:
    """Symbols moved to another log (a new shard layout or data folder) whose streams in Redis
    hold ids ahead of the clock (bumped by a burst, or the clock stepped back): seeded with
    ``HotStore.last_seqs``, the new writer's ticks go above them instead of being skipped as
    already present."""
    counter, rng = itertools.count(1), random.Random(11)
    ahead_us = time.time_ns() // 1000 + 60_000_000
    hot = HotStore(redis_url)
    earlier = [t.with_seq(ahead_us + i) for i, t in enumerate(tick_batch(counter, 60, rng))]
    hot.append(earlier)
    floors = hot.last_seqs([("binance", s, k) for s, k in itertools.product(SYMBOLS, KINDS)])
    assert set(floors) == {(t.exchange, t.symbol, t.kind) for t in earlier}
    with WriteAheadLog(tmp_path / "wal") as wal:
        writer = DurableTickWriter(wal, HotStore(redis_url), name="moved")
        writer.recover(floors)
        acked = writer.submit(tick_batch(counter, 300, rng)).ticks
        assert writer.flush(10)
        assert writer.health()["skipped_present"] == 0
        writer.close()
    assert all(t.seq > floors[(t.exchange, t.symbol, t.kind)] for t in acked
               if (t.exchange, t.symbol, t.kind) in floors)
    assert_exactly_once(redis_ticks(redis_url), earlier + acked)
    hot.close()


CHILD = '''
import random, sys, time
from decimal import Decimal
from pathlib import Path

from helios_pipeline.storage.hot.writer import DurableTickWriter
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.domain.ticks import KINDS, Tick
from helios_pipeline.storage.hot.wal import WriteAheadLog

folder, url, run = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
wal = WriteAheadLog(folder, segment_bytes=64 * 1024)
writer = DurableTickWriter(wal, HotStore(url), checkpoint_interval_s=0.05, push_batch=100)
writer.recover()
print("ready", wal.truncated_bytes, flush=True)
rng, n = random.Random(run), 0
while True:
    batch = []
    for _ in range(rng.randint(1, 40)):
        n += 1
        now = time.time_ns() // 1000
        batch.append(Tick("binance", rng.choice(["BTC/USDT", "ETH/USDT", "SOL/USDT"]),
                          rng.choice(KINDS), now // 1000, now,
                          price=Decimal(rng.randint(1, 10**7)) / 100, qty=Decimal("0.5"),
                          event_id=run * 10**7 + n))
    ack = writer.submit(batch)
    sys.stdout.write("".join(f"{t.kind} {t.symbol} {s} {t.event_id}\\n"
                             for t, s in zip(ack.submitted, ack.seqs)))
    sys.stdout.flush()
'''


def run_and_kill(script: Path, folder: Path, url: str, run: int, rng: random.Random,
                 out: Path) -> None:
    """Start the writer, SIGKILL it at a random moment (sometimes before it is even ready)."""
    with out.open("wb") as sink, (out.with_suffix(".err")).open("wb") as err:
        child = subprocess.Popen([sys.executable, str(script), str(folder), url, str(run)],
                                 stdout=sink, stderr=err, cwd=REPO_ROOT)
    try:
        if run % 3 == 2:
            time.sleep(rng.uniform(0.05, 0.5))  # during start-up or recovery
        else:
            deadline = time.monotonic() + 20
            while not out.read_bytes().startswith(b"ready"):
                assert child.poll() is None, out.with_suffix(".err").read_text()
                assert time.monotonic() < deadline, "writer did not start within 20 s"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.02, 0.6))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL, out.with_suffix(".err").read_text()


def parse_acks(out: Path) -> list[tuple[Identity, int]]:
    lines = out.read_text().split("\n")[:-1]  # a line cut by the kill has no newline
    acks = []
    for line in lines:
        if line.startswith("ready"):
            continue
        kind, symbol, seq, event_id = line.split(" ")
        acks.append((("binance", symbol, kind, int(seq)), int(event_id)))
    return acks


def test_kill_9_never_loses_an_acknowledged_tick(tmp_path: Path, redis_url: str) -> None:
    script, folder = tmp_path / "writer.py", tmp_path / "wal"
    script.write_text(CHILD)
    rng = random.Random(20240501)
    acked: dict[Identity, int] = {}
    for run in range(12):
        out = tmp_path / f"run{run}.out"
        run_and_kill(script, folder, redis_url, run, rng, out)
        for identity, event_id in parse_acks(out):
            assert identity not in acked, f"seq reused for {identity}"
            acked[identity] = event_id
    assert len(acked) > 1000  # the runs did acknowledge ticks before being killed
    with WriteAheadLog(folder) as wal:
        logged = {}
        for _, payload in wal.records():
            tick = decode_tick(payload)
            logged[tick.identity] = tick.event_id
        with DurableTickWriter(wal, HotStore(redis_url)) as writer:
            assert writer.flush(30)
    assert all(logged.get(identity) == event_id for identity, event_id in acked.items())
    in_redis = redis_ticks(redis_url)
    stored = Counter(t.identity for t in in_redis)
    assert max(stored.values()) == 1  # none twice
    assert max(Counter(t.event_id for t in in_redis).values()) == 1
    assert all(stored[identity] == 1 for identity in acked)  # every acknowledged tick
    assert {t.identity: t.event_id for t in in_redis} == logged  # and nothing else


def test_concurrent_submitters_share_fsyncs_and_ack_only_durable_ticks(
    tmp_path: Path, redis_url: str
) -> None:
    acked: list[Tick] = []
    acked_before_durable: list[int] = []
    lock = threading.Lock()
    with (
        WriteAheadLog(tmp_path / "wal") as wal,
        DurableTickWriter(wal, HotStore(redis_url), commit_delay_s=0.002) as writer,
    ):

        def produce(seed: int) -> None:
            rng, counter = random.Random(seed), itertools.count(seed * 10**6)
            for _ in range(40):
                ack = writer.submit(tick_batch(counter, 10, rng))
                with lock:
                    if wal.synced_position < ack.last_position:
                        acked_before_durable.append(ack.last_position)
                    acked.extend(ack.ticks)

        threads = [threading.Thread(target=produce, args=(seed,)) for seed in range(1, 9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert writer.flush(10)
        health = writer.health()
    assert acked_before_durable == []
    assert health["acked"] == len(acked) == 8 * 40 * 10
    assert int(str(health["syncs"])) < 8 * 40  # group commit: fewer fsyncs than submits
    per_stream: dict[tuple[str, str, str], list[int]] = {}
    for tick in acked:
        per_stream.setdefault(tick.identity[:3], []).append(tick.seq)
    assert all(len(set(seqs)) == len(seqs) for seqs in per_stream.values())
    assert_exactly_once(redis_ticks(redis_url), acked)
