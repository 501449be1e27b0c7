"""The Redis hot tier against a real redis-server: streams, trimming, latest hash, waiting."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from helios_pipeline.domain.symbols import SymbolError
from helios_pipeline.domain.ticks import Tick, TickError, TickKind
from helios_pipeline.storage.hot.codec import (
    decimal_field,
    decode_tick,
    encode_tick,
    peek_identity,
)
from helios_pipeline.storage.hot.keys import latest_key, stream_key
from helios_pipeline.storage.hot.store import Guard, HotStore, seq_from_stream_id, stream_id

HOUR_MS = 3_600_000


def now_us() -> int:
    return time.time_ns() // 1000


def make_ticks(
    symbol: str, kind: TickKind, count: int, start_us: int, price: str = "42000.10"
) -> list[Tick]:
    """``count`` ticks, one microsecond apart, seq = receive time (as the writer assigns it)."""
    base = Decimal(price)
    return [
        Tick("binance", symbol, kind, (start_us + i) // 1000, start_us + i,
             price=base + i, qty=Decimal("0.00100"), bid=base + i - Decimal("0.01"),
             ask=base + i + Decimal("0.01"), event_id=1000 + i, seq=start_us + i)
        for i in range(count)
    ]


@pytest.fixture
def hot(redis_url: str) -> Iterator[HotStore]:
    store = HotStore(redis_url)
    yield store
    store.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_tick_encoding_round_trips_every_digit() -> None:
    tick = Tick("binance", "BTC/USDT", "ticker", 1715000000000, 1715000000000123,
                price=Decimal("42000.10"), qty=Decimal("1E-8"), bid=Decimal("0.000000012345678901"),
                ask=Decimal("123456789012345678901234567890.5"), event_id=None, seq=7)
    assert decode_tick(encode_tick(tick)) == tick
    assert str(decode_tick(encode_tick(tick)).price) == "42000.10"
    assert Tick.from_dict(tick.to_dict()) == tick
    assert tick.to_dict()["qty"] == "1E-8"
    assert encode_tick(tick, seq=9).split(b"|")[4] == b"9"


def test_flagged_ticks_are_version_2_and_clean_ones_keep_version_1() -> None:
    clean = Tick("binance", "BTC/USDT", "trade", 1715000000000, 1715000000000123,
                 price=Decimal("42000.10"), qty=Decimal("0.5"), event_id=987, seq=5)
    flagged = clean.with_flags(("stale", "cross_exchange_divergence"))
    assert encode_tick(clean) == b"1|binance|BTC/USDT|trade|5|1715000000000|1715000000000123|" \
                                 b"42000.10|0.5|||987"
    data = encode_tick(flagged)
    assert data == encode_tick(clean).replace(b"1|", b"2|", 1) + b"|stale,cross_exchange_divergence"
    assert decode_tick(data) == flagged
    assert decode_tick(data).flags == ("stale", "cross_exchange_divergence")
    assert peek_identity(data) == ("binance", "BTC/USDT", "trade", 5)
    assert decimal_field(data, "price") == Decimal("42000.10")
    assert Tick.from_dict(flagged.to_dict()) == flagged
    assert flagged.with_seq(6).flags == flagged.flags
    with pytest.raises(TickError, match="13 starting with version 2"):
        decode_tick(encode_tick(clean).replace(b"1|", b"2|", 1))
    with pytest.raises(TickError, match="no empty name"):
        clean.with_flags(("a,b",))


def test_bad_ticks_and_encodings_are_named() -> None:
    with pytest.raises(TickError, match="'candle' is not one of trade, ticker, book"):
        Tick("binance", "BTC/USDT", "candle", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(TickError, match=r"contains '\|'"):
        Tick("binance", "BTC|USDT", "trade", 1, 1)
    with pytest.raises(TickError, match="b'garbage'"):
        decode_tick(b"garbage")


def test_stream_ids_follow_seq_and_keys_follow_the_layout() -> None:
    assert stream_id(1715000000000123) == "1715000000000-123"
    assert seq_from_stream_id(b"1715000000000-123") == 1715000000000123
    assert stream_key("Binance", "btc/usdt", "trade") == "helios:binance:BTCUSDT:trade"
    assert latest_key("binance") == "helios:binance:latest"
    with pytest.raises(ValueError, match=r"not '<ms>-<0\.\.999>'"):
        seq_from_stream_id("1-1000")


def test_append_writes_one_entry_per_tick_with_its_seq_id(hot: HotStore, raw: redis.Redis) -> None:
    start = now_us()
    ticks = make_ticks("BTC/USDT", "trade", 50, start)
    result = hot.append(ticks)
    assert (result.added, result.skipped, result.expired) == (50, 0, 0)
    entries = raw.xrange("helios:binance:BTCUSDT:trade")
    assert [e[0].decode() for e in entries] == [stream_id(t.seq) for t in ticks]
    assert [decode_tick(e[1][b"t"]) for e in entries] == ticks
    assert hot.last_id("BTC/USDT", "trade") == stream_id(ticks[-1].seq)
    assert hot.last_id("ETH/USDT", "trade") is None


def test_re_adding_present_ticks_is_skipped_never_duplicated(
    hot: HotStore, raw: redis.Redis
) -> None:
    start = now_us()
    ticks = make_ticks("ETH/USDT", "trade", 30, start)
    hot.append(ticks[:20])
    again = hot.append(ticks)  # a replay that overlaps what Redis has
    assert (again.added, again.skipped) == (10, 20)
    assert hot.append(ticks) == type(again)(0, 30, 0)
    assert raw.xlen("helios:binance:ETHUSDT:trade") == 30
    assert hot.recent("ETH/USDT", "trade", start // 1000) == ticks


def test_streams_are_trimmed_to_the_retention(hot: HotStore, raw: redis.Redis,
                                              redis_url: str) -> None:
    old_start = now_us() - 2 * HOUR_MS * 1000
    old = make_ticks("SOL/USDT", "trade", 1000, old_start)
    past = HotStore(redis_url, clock_ms=lambda: old_start // 1000 + 1)  # writing two hours ago
    assert past.append(old).added == 1000
    past.close()
    key = "helios:binance:SOLUSDT:trade"
    assert raw.xlen(key) == 1000
    fresh = make_ticks("SOL/USDT", "trade", 10, now_us())
    assert hot.append(fresh).added == 10
    # MINID ~ drops whole stream nodes (100 entries each); what is left of the old hour is the
    # tail of the node the new entries were appended to.
    remaining_old = raw.xlen(key) - 10
    assert 0 <= remaining_old < 100
    first_kept = seq_from_stream_id(raw.xrange(key, count=1)[0][0])
    assert first_kept >= old[-100].seq
    assert hot.recent("SOL/USDT", "trade", (now_us() // 1000) - HOUR_MS) == fresh


def test_ticks_older_than_the_retention_are_not_written(hot: HotStore, raw: redis.Redis) -> None:
    stale = make_ticks("BTC/USDT", "book", 5, now_us() - (HOUR_MS + 60_000) * 1000)
    result = hot.append(stale)
    assert (result.added, result.expired) == (0, 5)
    assert raw.exists("helios:binance:BTCUSDT:book") == 0


def test_last_seqs_outlive_trimming_and_leave_out_missing_streams(
        hot: HotStore, raw: redis.Redis) -> None:
    start = now_us()
    hot.append(make_ticks("BTC/USDT", "trade", 5, start))
    hot.append(make_ticks("ETH/USDT", "book", 3, start + 100))
    raw.xtrim(stream_key("binance", "ETH/USDT", "book"), maxlen=0)  # empty, id still taken
    streams = [("binance", "BTC/USDT", "trade"), ("binance", "ETH/USDT", "book"),
               ("binance", "SOL/USDT", "trade")]
    assert hot.last_seqs(streams) == {("binance", "BTC/USDT", "trade"): start + 4,
                                      ("binance", "ETH/USDT", "book"): start + 102}
    assert hot.last_seqs([]) == {}


def test_latest_hash_holds_the_newest_ticker_per_symbol(hot: HotStore, raw: redis.Redis) -> None:
    start = now_us()
    hot.append(make_ticks("BTC/USDT", "ticker", 5, start, price="42000.10")
               + make_ticks("ETH/USDT", "ticker", 3, start, price="3000.5"))
    hot.append(make_ticks("BTC/USDT", "trade", 2, start + 100, price="1"))  # trades: no change
    assert set(raw.hkeys("helios:binance:latest")) == {b"BTCUSDT", b"ETHUSDT"}
    assert hot.latest_price("BTC/USDT") == Decimal("42004.10")
    assert str(hot.latest_price("BTC/USDT")) == "42004.10"
    latest = hot.latest("ETH/USDT")
    assert latest is not None
    assert (latest.price, latest.bid, latest.ask, latest.seq) == (
        Decimal("3002.5"), Decimal("3002.49"), Decimal("3002.51"), start + 2)
    assert hot.latest_price("SOL/USDT") is None
    assert hot.latest("SOL/USDT", exchange="kraken") is None


def test_replayed_old_ticker_does_not_overwrite_latest(hot: HotStore) -> None:
    start = now_us()
    ticks = make_ticks("BTC/USDT", "ticker", 4, start)
    hot.append(ticks)
    hot.append(ticks[:2])
    assert hot.latest_price("BTC/USDT") == ticks[-1].price


def test_latest_many_is_one_hmget(hot: HotStore) -> None:
    start = now_us()
    hot.append(make_ticks("BTC/USDT", "ticker", 2, start, price="100")
               + make_ticks("SOL/USDT", "ticker", 1, start, price="150.25"))
    got = hot.latest_many(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    assert list(got) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert got["ETH/USDT"] is None
    assert got["BTC/USDT"] is not None
    assert got["BTC/USDT"].price == Decimal("101")
    assert got["SOL/USDT"] is not None
    assert got["SOL/USDT"].price == Decimal("150.25")
    assert hot.latest_many([]) == {}


def test_wait_for_wakes_when_data_arrives(hot: HotStore) -> None:
    start = now_us()
    hot.append(make_ticks("BTC/USDT", "trade", 3, start))
    after = hot.last_id("BTC/USDT", "trade")
    newer = make_ticks("BTC/USDT", "trade", 2, start + 10)

    async def scenario() -> tuple[list[tuple[str, Tick]], float]:
        began = time.monotonic()
        waiter = asyncio.create_task(hot.wait_for("BTC/USDT", "trade", after, timeout_ms=5000))
        await asyncio.sleep(0.2)
        assert not waiter.done()
        await asyncio.to_thread(hot.append, newer)
        got = await waiter
        await hot.aclose()
        return got, time.monotonic() - began

    got, elapsed = asyncio.run(scenario())
    assert [tick for _, tick in got] == newer
    assert [entry for entry, _ in got] == [stream_id(t.seq) for t in newer]
    assert elapsed < 2.0  # woke on the write, not at the 5 s timeout


def test_wait_for_times_out_empty(hot: HotStore) -> None:
    async def scenario() -> list[tuple[str, Tick]]:
        try:
            return await hot.wait_for("ETH/USDT", "book", None, timeout_ms=100)
        finally:
            await hot.aclose()

    began = time.monotonic()
    assert asyncio.run(scenario()) == []
    assert 0.09 <= time.monotonic() - began < 2.0


def test_guarded_push_applies_only_on_the_expected_marker(hot: HotStore, raw: redis.Redis) -> None:
    start = now_us()
    ticks = make_ticks("BTC/USDT", "trade", 4, start)
    entries = [(t.exchange, t.symbol, t.kind, t.seq, encode_tick(t)) for t in ticks]
    refused = hot.push(entries, Guard("helios:test:marker", "17", "21"))
    assert refused.guard_value == ""  # missing marker reads as ""
    assert raw.exists("helios:binance:BTCUSDT:trade") == 0
    applied = hot.push(entries, Guard("helios:test:marker", "", "4"))
    assert (applied.added, applied.guard_value) == (4, None)
    assert raw.get("helios:test:marker") == b"4"
    assert hot.push(entries[:1], Guard("helios:test:marker", "3", "5")).guard_value == "4"


def test_unassigned_seq_and_bad_symbols_are_refused(hot: HotStore) -> None:
    tick = make_ticks("BTC/USDT", "trade", 1, now_us())[0]
    with pytest.raises(ValueError, match="has no seq"):
        hot.append([tick.with_seq(0)])
    with pytest.raises(SymbolError, match="BTCUSDT"):
        hot.append([Tick("binance", "BTCUSDT", "trade", 1, now_us(), seq=now_us())])


def test_concurrent_readers_see_consistent_latest(hot: HotStore) -> None:
    start = now_us()
    hot.append(make_ticks("BTC/USDT", "ticker", 1, start, price="10"))
    seen: list[Decimal | None] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(hot.latest_price("BTC/USDT"))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for i in range(1, 20):
        hot.append(make_ticks("BTC/USDT", "ticker", 1, start + i, price=str(10 + i)))
    stop.set()
    for reader in readers:
        reader.join()
    assert seen
    assert all(price is not None and Decimal(10) <= price <= Decimal(29) for price in seen)
    assert hot.latest_price("BTC/USDT") == Decimal(29)
