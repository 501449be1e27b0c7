"""``MarketDataQuery`` against real stores: daily files from the simulated exchange, real Redis.

The data root is filled once per module by the batch ingest (three days of BTC/USDT from the
simulated Binance); "now" is pinned to 00:30 UTC of the next day, so today's first half hour is
live: candles in Redis and in the rolling intraday file.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import redis

from helios_pipeline.batch.ingest import Stores, ingest_range
from helios_pipeline.domain.aggregate import aggregate_table
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Bucket, Timeframe, datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.query.errors import QueryError, TierUnavailableError
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.current_candles import store_current_candles
from helios_pipeline.storage.hot.keys import candle_key
from helios_pipeline.storage.hot.live_candles import encode_candle
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline_tests.unit.test_volume_profile import brute_force_profile

SYMBOL = "BTC/USDT"
DAYS = [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
TODAY = datetime(2024, 5, 4, tzinfo=UTC)
NOW_MS = datetime_to_ms(TODAY) + 30 * 60_000  # 00:30 UTC


def ingest(url: str, root: Path, days: list[date], qualifier: str | None = None) -> None:
    async def run() -> None:
        async with ExchangeClient("binance", base_url=url, qualifier=qualifier) as client:
            stores = Stores(CandleStore(root), MetadataStore(root / "metadata.sqlite"),
                            QuarantineStore(root))
            await ingest_range(client, stores, SYMBOL, days)

    asyncio.run(run())


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory,
           sim_exchange: SimExchangeServer) -> Path:
    root = tmp_path_factory.mktemp("query") / "data"
    ingest(sim_exchange.base_url, root, DAYS)
    return root


@pytest.fixture
def root(filled: Path, tmp_path: Path) -> Path:
    """A copy of the filled data root, this test's to change."""
    copy = tmp_path / "data"
    shutil.copytree(filled, copy)
    return copy


def live(minute: int, close: str, version: int = 1) -> LiveCandle:
    price = Decimal(close)
    return LiveCandle(SYMBOL, NOW_MS - 30 * 60_000 + minute * 60_000, price, price + 1,
                      price - 1, price, Decimal("2.5"), 7, 0, 0, version, version > 1, 0)


def put_live(url: str, candles: list[LiveCandle]) -> None:
    client = redis.Redis.from_url(url)
    for candle in candles:
        client.hset(candle_key("binance", SYMBOL), str(candle.open_ms), encode_candle(candle))
    client.close()


def query(root: Path, redis_url: str | None = None, **kwargs: object) -> MarketDataQuery:
    return MarketDataQuery(root, redis_url=redis_url, clock_ms=lambda: NOW_MS,
                           start_date="2024-04-01", **kwargs)  # type: ignore[arg-type]


def stored_minutes(root: Path) -> pd.DataFrame:
    return CandleStore(root).load_frame(SYMBOL, Timeframe.M1, DAYS[0], DAYS[-1])


def test_a_range_of_daily_files_comes_back_exactly(root: Path) -> None:
    frame = query(root).ohlcv(SYMBOL, "1m", start=DAYS[0], end=TODAY)
    expected = stored_minutes(root)
    assert len(frame) == 3 * 1440
    assert (frame.index == expected.index).all()
    for column in ("open", "high", "low", "close", "volume", "trades"):
        assert frame[column].tolist() == expected[column].tolist()  # exact Decimals
    assert set(frame["tier"]) == {"warm"}


def test_the_seams_of_warm_hot_and_current_have_no_gap_and_no_duplicate(
        root: Path, redis_url: str) -> None:
    # The intraday file holds 00:00-00:19 (flushed an hour ago: 00:10-00:19 now have newer
    # versions in Redis); Redis holds 00:10-00:29.
    store_current_candles(root, SYMBOL, [live(m, f"{60000 + m}") for m in range(20)], NOW_MS)
    put_live(redis_url, [live(m, f"{61000 + m}", version=2) for m in range(10, 30)])
    frame = query(root, redis_url).ohlcv(SYMBOL, "1m", start=DAYS[-1])
    assert len(frame) == 1440 + 30
    assert set(frame.index.to_series().diff().dropna()) == {pd.Timedelta(minutes=1)}
    today = frame[frame.index >= pd.Timestamp(TODAY)]
    assert today["tier"].tolist() == ["current"] * 10 + ["hot"] * 20
    assert today["close"].tolist() == ([Decimal(60000 + m) for m in range(10)]
                                       + [Decimal(61000 + m) for m in range(10, 30)])
    assert frame[frame.index < pd.Timestamp(TODAY)]["tier"].eq("warm").all()


def test_longer_timeframes_stitch_stored_days_and_live_minutes(
        root: Path, redis_url: str) -> None:
    put_live(redis_url, [live(m, f"{61000 + m}") for m in range(30)])
    q = query(root, redis_url)
    m15 = q.ohlcv(SYMBOL, "15m", start=DAYS[-1])
    stored = CandleStore(root).load_frame(SYMBOL, Timeframe.M15, DAYS[-1], DAYS[-1])
    assert len(m15) == 96 + 2  # the day, then 00:00 and 00:15 of today (both closed at 00:30)
    assert m15.iloc[:96]["close"].tolist() == stored["close"].tolist()
    assert m15.iloc[96]["open"] == Decimal(61000)
    assert m15.iloc[96]["close"] == Decimal(61014)
    assert m15.iloc[96]["volume"] == Decimal("2.5") * 15
    hour = q.ohlcv(SYMBOL, "1h", start=DAYS[-1])
    assert len(hour) == 24  # today's 00:00 hour is still forming at 00:30: not returned


def test_other_lengths_are_aggregated_from_1m_exactly(root: Path) -> None:
    q = query(root)
    half_hours = q.ohlcv(SYMBOL, "30m", start=DAYS[0], end=TODAY)
    minutes = pa.concat_tables([CandleStore(root).load_table(SYMBOL, Timeframe.M1, d)
                                for d in DAYS])
    expected = aggregate_table(minutes, Bucket.parse("30m")).to_pandas()
    assert len(half_hours) == 3 * 48
    assert half_hours["close"].tolist() == expected["close"].tolist()
    assert half_hours["volume"].tolist() == expected["volume"].tolist()
    weeks = q.ohlcv(SYMBOL, "1w", start=DAYS[0])
    assert weeks.empty  # the week of 2024-04-29 (a Monday) has not closed on 2024-05-04


def test_limit_returns_the_last_closed_candles_across_days(root: Path, redis_url: str) -> None:
    put_live(redis_url, [live(m, f"{61000 + m}") for m in range(30)])
    q = query(root, redis_url)
    last = q.ohlcv(SYMBOL, "1m", limit=100)
    assert len(last) == 100
    assert last.index[-1] == pd.Timestamp(TODAY) + timedelta(minutes=29)
    assert last.index[0] == pd.Timestamp(TODAY) - timedelta(minutes=70)
    whole = q.ohlcv(SYMBOL, "1m", start=DAYS[0])
    assert last["close"].tolist() == whole["close"].tolist()[-100:]
    assert len(q.ohlcv(SYMBOL, "1d", limit=10)) == 3  # all there is


def test_floats_are_the_nearest_doubles_to_the_stored_decimals(root: Path) -> None:
    exact = query(root).ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY)
    floats = query(root).ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY, as_float=True)
    assert floats["close"].dtype == np.float64
    assert floats["close"].tolist() == [float(d) for d in exact["close"]]


def test_as_of_reads_the_version_stored_at_that_moment(
        root: Path, sim_exchange: SimExchangeServer) -> None:
    day = DAYS[1]
    before = query(root, cache_ttl_s=0).ohlcv(SYMBOL, "1m", start=day, end=DAYS[2])
    moment = datetime.now(UTC)
    sim_exchange.set_faults(f"spike:symbol=BTCUSDT,at={day}T12:00,factor=1.05")
    try:
        ingest(sim_exchange.base_url, root, [day])
    finally:
        sim_exchange.set_faults("")
    q = query(root, cache_ttl_s=0)
    after = q.ohlcv(SYMBOL, "1m", start=day, end=DAYS[2])
    assert not after["close"].equals(before["close"])  # the re-fetch changed the day
    then = q.ohlcv(SYMBOL, "1m", start=day, end=DAYS[2], as_of=moment)
    assert then["close"].tolist() == before["close"].tolist()
    assert then.index.equals(before.index)
    versions = MetadataStore(root / "metadata.sqlite").partition_history(
        "binance", SYMBOL, Timeframe.M1, day)
    assert [v.version for v in versions] == [1, 2]
    assert q.ohlcv(SYMBOL, "1m", start=day, end=DAYS[2], as_of=datetime.now(UTC)).equals(after)


def test_identical_calls_are_cached_until_new_data_lands(root: Path) -> None:
    q = query(root)
    first = q.ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY)
    first.iloc[0, 0] = Decimal(0)  # the caller's copy; the cache keeps its own
    second = q.ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY)
    assert q.cache.hits == 1
    assert second.iloc[0, 0] != Decimal(0)
    MetadataStore(root / "metadata.sqlite").store_config("touch", 1)  # new data lands
    q.ohlcv(SYMBOL, "1h", start=DAYS[0], end=TODAY)
    assert q.cache.hits == 1
    assert q.cache.misses == 2


def test_latest_price_trades_and_tickers_come_from_the_hot_tier(root: Path,
                                                                redis_url: str) -> None:
    hot = HotStore(redis_url, exchange="binance")
    now = datetime_to_ms(datetime.now(UTC))  # the hot tier trims by the wall clock
    us = now * 1000
    hot.append([
        Tick("binance", SYMBOL, "trade", now - 2000, us - 1000, Decimal("61000.5"),
             Decimal("0.25"), event_id=1, seq=us - 1000),
        Tick("binance", SYMBOL, "trade", now - 1000, us, Decimal("61001"), Decimal("0.5"),
             event_id=2, seq=us),
        Tick("binance", SYMBOL, "ticker", now - 500, us, Decimal("61001"), Decimal("1234"),
             Decimal("61000.9"), Decimal("61001.1"), event_id=3, seq=us),
    ])
    hot.close()
    q = MarketDataQuery(root, redis_url=redis_url, start_date="2024-04-01")
    assert q.latest_price(SYMBOL) == Decimal("61001")
    trades = q.trades(SYMBOL, start=now - 60_000)
    assert trades["price"].tolist() == [Decimal("61000.5"), Decimal("61001")]
    assert trades["qty"].tolist() == [Decimal("0.25"), Decimal("0.5")]
    assert q.trades(SYMBOL, limit=1)["price"].tolist() == [Decimal("61001")]
    tickers = q.tickers(SYMBOL, start=now - 60_000, as_float=True)
    assert tickers["bid"].tolist() == [61000.9]
    assert q.latest_price("ETH/USDT") is None


def test_a_hot_tier_that_is_down_is_said_so(root: Path) -> None:
    q = query(root, "redis://127.0.0.1:1/0")
    with pytest.raises(TierUnavailableError, match="cannot be reached"):
        q.latest_price(SYMBOL)
    with pytest.raises(TierUnavailableError, match="No hot tier"):
        query(root).latest_price(SYMBOL)


def test_compare_aligns_venues_and_measures_the_spread(root: Path) -> None:
    store = CandleStore(root)
    catalog = MetadataStore(root / "metadata.sqlite")
    for day in DAYS:  # a second venue 1% above the first
        table = store.load_table(SYMBOL, Timeframe.M1, day)
        for name in ("open", "high", "low", "close"):
            column = table.column(name).to_pylist()
            scaled = pa.array([v * Decimal("1.01") for v in column], table.schema.field(name).type)
            table = table.set_column(table.schema.get_field_index(name),
                                     table.schema.field(name), scaled)
        stored = store.store_table(SYMBOL, Timeframe.M1, day, table, "okx")
        catalog.record_partition("okx", SYMBOL, Timeframe.M1, day, stored, "test")
    view = query(root).compare(SYMBOL, ["binance", "okx"], "1h", start=DAYS[0], end=TODAY)
    assert list(view.columns) == ["close_binance", "close_okx", "spread", "spread_pct"]
    assert len(view) == 72
    assert np.allclose(view["spread_pct"], 1.0)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"symbol": "BTC-USDT-XX"}, "symbol="),
    ({"symbol": "DOGE/USDT"}, "no data for it"),
    ({"timeframe": "7m"}, "timeframe='7m'"),
    ({"timeframe": "1x"}, "timeframe='1x'"),
    ({"limit": 0}, "limit=0"),
    ({"limit": -5}, "limit=-5"),
    ({"start": "2024-05-03T00:00Z", "end": "2024-05-01T00:00Z"}, "is after end"),
    ({"start": datetime(2024, 5, 1)}, "no time zone"),  # noqa: DTZ001 - the point of the case
    ({"start": "yesterday-ish"}, "not a date or time"),
    ({"exchange": "bin ance"}, "exchange="),
])
def test_bad_arguments_raise_one_typed_error_naming_them(
        root: Path, arguments: dict[str, object], message: str) -> None:
    call = {"symbol": SYMBOL, **arguments}
    with pytest.raises(QueryError, match=message):
        query(root).ohlcv(**call)  # type: ignore[arg-type]



def test_the_volume_profile_spreads_each_candle_over_its_range(root: Path) -> None:
    q = query(root)
    profile = q.volume_profile(SYMBOL, DAYS[0], TODAY, bins=40)
    frame = q.ohlcv(SYMBOL, "1m", start=DAYS[0], end=TODAY, as_float=True)
    edges = np.r_[profile.bins["price_low"].to_numpy(), profile.bins["price_high"].iloc[-1]]
    assert np.allclose(profile.bins["volume"], brute_force_profile(frame, edges), rtol=1e-9)
    assert profile.total_volume == pytest.approx(float(frame["volume"].sum()), rel=1e-12)
    assert profile.bins["volume"].sum() == pytest.approx(profile.total_volume, rel=1e-9)
    top = int(profile.bins["volume"].to_numpy().argmax())
    assert profile.poc == pytest.approx(edges[top:top + 2].mean())
    inside = profile.bins[(profile.bins["price_low"] >= profile.value_area_low)
                          & (profile.bins["price_high"] <= profile.value_area_high)]
    assert inside["volume"].sum() >= 0.7 * profile.total_volume
    assert profile.value_area_low <= profile.poc <= profile.value_area_high
    stepped = q.volume_profile(SYMBOL, DAYS[0], TODAY, bin_size=Decimal(100))
    assert (stepped.bins["price_low"] % 100 == 0).all()
    with pytest.raises(QueryError, match="bins"):
        q.volume_profile(SYMBOL, DAYS[0], TODAY, bins=0)


def test_the_intraday_file_keeps_24_hours_and_takes_redis_newer_versions(root: Path) -> None:
    day_ago = NOW_MS - 24 * 3_600_000
    old = LiveCandle(SYMBOL, day_ago - 60_000, *[Decimal(1)] * 5, 1, 0, 0, 1, False, 0)
    store_current_candles(root, SYMBOL, [old, live(0, "60000"), live(1, "60001")], NOW_MS)
    rows = store_current_candles(root, SYMBOL, [live(1, "60009", version=2)], NOW_MS)
    assert rows == 2  # the candle older than 24 hours is gone
    frame = query(root).ohlcv(SYMBOL, "1m", start=TODAY)
    assert frame["close"].tolist() == [Decimal(60000), Decimal(60009)]
    assert frame["tier"].tolist() == ["current", "current"]
