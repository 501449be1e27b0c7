"""The InfluxDB mirror against a real influxd: its lines, retention, the durable outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.storage.candle_codec import to_table
from helios_pipeline.storage.candles import CandleStore, candle_columns
from helios_pipeline.storage.influx.feed import queue_candles
from helios_pipeline.storage.influx.lines import candle_line, candle_lines, candle_table_lines
from helios_pipeline.storage.influx.mirror import InfluxMirror
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline_tests.influx_data import real_candles, yesterday
from helios_pipeline_tests.influx_server import InfluxServer


@pytest.fixture
def mirror(influx: InfluxServer, tmp_path: Path) -> InfluxMirror:
    return InfluxMirror(influx.url, influx.fresh_database(), tmp_path / "outbox",
                        batch_points=500)


def test_candle_line_carries_the_nearest_doubles_and_tags() -> None:
    candle = real_candles()[0]
    line = candle_line("binance", candle)
    assert line == (
        "ohlcv,exchange=binance,symbol=BTC/USDT,timeframe=1m close=7949.22,"
        "high=7954.59,low=7934.43,open=7934.58,quote_volume=429402.29799722,"
        "taker_buy_quote_volume=295788.26344769,taker_buy_volume=37.215433,trades=610i,"
        "volume=54.02587 1583971200000")
    tiny = replace(candle, volume=Decimal("0E-18"), close=Decimal("1E+4"), trades=None)
    assert ",trades=" not in candle_line("binance", tiny)
    assert "close=10000.0," in candle_line("binance", tiny)
    assert "volume=0.0 " in candle_line("binance", tiny)


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=Decimal("1E-12"), max_value=Decimal("1E+12"), places=18,
                   allow_nan=False, allow_infinity=False))
def test_a_field_reads_back_as_the_double_of_the_exchanges_text(value: Decimal) -> None:
    """What InfluxDB parses from our text is what it would parse from the exchange's."""
    line = candle_line("binance", replace(real_candles()[0], close=value))
    text = line.split("close=", 1)[1].split(",", 1)[0]
    assert float(text) == float(str(value))


def test_a_partition_table_gives_the_same_lines_as_its_candles() -> None:
    candles = real_candles()[:50]
    table = to_table(candle_columns(candles), "test")
    assert candle_table_lines("binance", "BTC/USDT", Timeframe.M1, table) == candle_lines(
        "binance", candles)


def test_candles_arrive_once_with_values_and_tags(
        mirror: InfluxMirror, influx: InfluxServer) -> None:
    candles = real_candles(shift_to=yesterday())
    assert mirror.write_candles("binance", candles) == 1440
    report = mirror.flush()

    assert (report.sent_points, report.sent_batches, report.pending_batches) == (1440, 3, 0)
    assert influx.count(mirror.database, "ohlcv") == 1440
    series = influx.query(mirror.database, 'SELECT "close", "trades" FROM "ohlcv" '
                          "WHERE exchange = 'binance' AND symbol = 'BTC/USDT' "
                          "AND timeframe = '1m' ORDER BY time DESC LIMIT 1")
    time_ms, close, trades = series[0]["values"][0]
    assert time_ms == datetime_to_ms(candles[-1].timestamp)
    assert close == float(candles[-1].close)
    assert trades == candles[-1].trades

    mirror.write_candles("binance", candles)  # the same candles again overwrite themselves
    assert mirror.flush().sent_points == 1440
    assert influx.count(mirror.database, "ohlcv") == 1440


def test_database_gets_a_30_day_default_retention(
        mirror: InfluxMirror, influx: InfluxServer) -> None:
    mirror.write_candles("binance", real_candles(shift_to=yesterday())[:10])
    mirror.flush()
    policies = influx.query(mirror.database, "SHOW RETENTION POLICIES")[0]["values"]
    assert ["helios_warm", "720h0m0s", "24h0m0s", 1, True] in policies


def test_candles_older_than_the_retention_are_dropped_not_queued_forever(
        mirror: InfluxMirror, influx: InfluxServer) -> None:
    mirror.write_candles("binance", real_candles())  # 2020: far outside 30 days
    report = mirror.flush()
    assert (report.dropped_old, report.pending_batches, report.error) == (1440, 0, None)
    assert influx.count(mirror.database, "ohlcv") == 0


def test_server_stopped_mid_run_loses_nothing_and_duplicates_nothing(
        influx: InfluxServer, tmp_path: Path) -> None:
    database = influx.fresh_database()
    candles = real_candles(shift_to=yesterday())
    first = InfluxMirror(influx.url, database, tmp_path / "outbox", batch_points=100)
    first.write_candles("binance", candles[:400])
    assert first.flush().sent_points == 400

    influx.stop()
    assert first.write_candles("binance", candles[400:900]) == 500  # queued, not refused
    down = first.flush()
    assert (down.sent_points, down.pending_points) == (0, 500)
    assert down.error is not None
    assert "unreachable" in down.error
    first.write_candles("binance", candles[900:])
    first.close()

    influx.start()
    # A new process (another run) finds the queue on disk and drains it in order.
    second = InfluxMirror(influx.url, database, tmp_path / "outbox", batch_points=100)
    assert second.outbox.pending() == (11, 1040)
    report = second.flush()
    assert (report.sent_points, report.pending_batches, report.error) == (1040, 0, None)
    assert influx.count(database, "ohlcv") == 1440
    times = [row[0] for row in influx.query(database, 'SELECT "close" FROM "ohlcv"')[0]["values"]]
    assert times == [datetime_to_ms(c.timestamp) for c in candles]


def test_refused_batch_is_set_aside_and_the_queue_moves_on(
        mirror: InfluxMirror, influx: InfluxServer) -> None:
    candles = real_candles(shift_to=yesterday())
    mirror.write_candles("binance", candles[:1])
    mirror.flush()
    # The first batch made "trades" an integer field: a float "trades" can never be written.
    conflicting = ("ohlcv,exchange=binance,symbol=BTC/USDT,timeframe=1m trades=1.5 "
                   f"{datetime_to_ms(candles[1].timestamp)}")
    mirror.outbox.append("ms", [conflicting])
    mirror.write_candles("binance", [replace(candles[2], trades=None)])
    report = mirror.flush()

    assert (report.rejected_batches, report.sent_points, report.pending_batches) == (1, 1, 0)
    ((_, points, reason),) = mirror.outbox.rejected()
    assert points == 1
    assert "field type conflict" in reason
    assert influx.count(mirror.database, "ohlcv") == 2


def test_trades_in_the_same_millisecond_stay_distinct(
        mirror: InfluxMirror, influx: InfluxServer) -> None:
    now_ms = datetime_to_ms(datetime.now(UTC)) - 60_000
    ticks = [Tick("binance", "BTC/USDT", "trade", now_ms, now_ms * 1000 + i,
                  price=Decimal("93576.12") + i, qty=Decimal("0.0001"), event_id=i,
                  seq=now_ms * 1000 + i) for i in range(3)]
    ticker = Tick("binance", "BTC/USDT", "ticker", now_ms, now_ms * 1000, price=Decimal("93576"),
                  bid=Decimal("93575.99"), ask=Decimal("93576.01"), seq=now_ms * 1000 + 7)
    assert mirror.write_ticks([*ticks, ticker]) == 4
    assert mirror.flush().sent_points == 4

    assert influx.count(mirror.database, "trade", "price") == 3
    values = influx.query(mirror.database, 'SELECT "price", "event_id" FROM "trade"')[0]["values"]
    assert [row[2] for row in values] == [0, 1, 2]
    bid = influx.query(mirror.database, 'SELECT "bid" FROM "ticker"')[0]["values"][0][1]
    assert bid == 93575.99


def test_database_that_cannot_be_set_up_keeps_batches_queued(
        mirror: InfluxMirror, influx: InfluxServer) -> None:
    # Someone created the database with a 7-day "helios_warm" policy: ours cannot be applied.
    mirror.client.query(f'CREATE DATABASE "{mirror.database}" WITH DURATION 7d NAME helios_warm')
    mirror.write_candles("binance", real_candles(shift_to=yesterday())[:20])
    report = mirror.flush()

    assert (report.sent_points, report.pending_points, report.rejected_batches) == (0, 20, 0)
    assert report.error is not None
    assert mirror.database in report.error
    assert "HELIOS_INFLUX_DATABASE" in report.error
    assert mirror.outbox.rejected() == []


def test_feed_queues_a_partition_once_per_content(
        mirror: InfluxMirror, influx: InfluxServer, tmp_path: Path) -> None:
    day = yesterday()
    candles = real_candles(shift_to=day)
    store = CandleStore(tmp_path / "data")
    catalog = MetadataStore(tmp_path / "data" / "metadata.sqlite")

    def store_and_queue(day_candles: list[OHLCVData]) -> int:
        stored = store.store("BTC/USDT", Timeframe.M1, day.date(), day_candles)
        catalog.record_partition("binance", "BTC/USDT", Timeframe.M1, day.date(), stored, "test")
        return queue_candles(mirror, catalog, datetime_to_ms(datetime.now(UTC))).points

    assert store_and_queue(candles) == 1440
    assert queue_candles(mirror, catalog, datetime_to_ms(datetime.now(UTC))).points == 0
    fixed = [*candles[:-1], replace(candles[-1], close=Decimal("7911.11000000"))]
    assert store_and_queue(fixed) == 1440  # a re-fetch changed the day: queued again
    mirror.flush()

    assert influx.count(mirror.database, "ohlcv") == 1440
    last = influx.query(mirror.database, 'SELECT last("close") FROM "ohlcv"')[0]["values"][0][1]
    assert last == 7911.11
