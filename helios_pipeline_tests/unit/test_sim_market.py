"""Simulated exchange data sources: seeded market, replayed Binance files, intervals, trades."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from helios_pipeline.domain.gaps import count_missing, missing_ranges
from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, datetime_to_ms, day_start_ms
from helios_pipeline.sim.market.candles import KlineBlock
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.sources import ReplayMarket, SeededMarket
from helios_pipeline.sim.market.trades import minute_trades, partial_kline
from helios_pipeline.sim.market.universe import DEFAULT_SYMBOLS, symbol_spec
from helios_pipeline_tests.conftest import KLINES_DIR

HOUR_MS = 60 * MINUTE_MS
DECIMAL_8 = re.compile(r"^\d+\.\d{8}$")
DAY = day_start_ms(date(2024, 1, 30)) // DAY_MS
NOW = day_start_ms(date(2024, 2, 2)) + 10 * HOUR_MS + 30 * MINUTE_MS + 30_000  # 10:30:30


def replay_folder() -> Path:
    return KLINES_DIR


def day_of(d: date) -> int:
    return day_start_ms(d) // DAY_MS


def decode(rows: list[bytes]) -> list[list[object]]:
    return [json.loads(r) for r in rows]


def csv_rows(name: str) -> list[list[str]]:
    text = (replay_folder() / name).read_text()
    return [line.split(",") for line in text.splitlines() if line]


def expected_wire(fields: list[str]) -> list[object]:
    """What /api/v3/klines must send for a CSV row: same strings, ms timestamps."""
    def ms(value: str) -> int:
        stamp = int(value)
        return stamp // 1000 if stamp > 10**14 else stamp

    return [ms(fields[0]), *fields[1:6], ms(fields[6]), fields[7], int(fields[8]), fields[9],
            fields[10], fields[11]]


# ----------------------------------------------------------------------------- seeded market


def test_seeded_day_is_deterministic_and_independent_of_request_order() -> None:
    first, second = SeededMarket(), SeededMarket()
    a1 = first.day("BTCUSDT", DAY).rows()
    a2 = first.day("BTCUSDT", DAY + 1).rows()
    b2 = second.day("BTCUSDT", DAY + 1).rows()
    b1 = second.day("BTCUSDT", DAY).rows()
    assert a1 == b1
    assert a2 == b2
    assert a1 != a2
    assert first.day("ETHUSDT", DAY).rows() != a1


def test_seeded_past_day_has_1440_well_formed_klines() -> None:
    spec = symbol_spec("BTCUSDT")
    rows = decode(SeededMarket().day("BTCUSDT", DAY).rows())
    assert len(rows) == 1440
    start = DAY * DAY_MS
    assert [r[0] for r in rows] == list(range(start, start + DAY_MS, MINUTE_MS))
    for r in rows:
        assert len(r) == 12
        assert r[6] == r[0] + MINUTE_MS - 1
        assert r[11] == "0"
        assert isinstance(r[8], int)
        assert r[8] > 0
        for value in (r[1], r[2], r[3], r[4], r[5], r[7], r[9], r[10]):
            assert DECIMAL_8.match(str(value)), value
        o, h, lo, c = (Decimal(str(x)) for x in r[1:5])
        assert h >= max(o, c)
        assert lo <= min(o, c)
        volume, quote, taker = Decimal(str(r[5])), Decimal(str(r[7])), Decimal(str(r[9]))
        assert volume > 0
        assert 0 <= taker <= volume
        assert lo * volume - 1 <= quote <= h * volume + 1
        assert (o / Decimal("0.01")) % 1 == 0  # on the 0.01 tick grid
        assert (volume * 10**8) % spec.step_units == 0  # on the lot-size grid


def test_seeded_open_equals_previous_close_across_midnight() -> None:
    market = SeededMarket()
    rows = decode(market.day("SOLUSDT", DAY).rows() + market.day("SOLUSDT", DAY + 1).rows())
    for previous, current in itertools.pairwise(rows):
        assert current[1] == previous[4]


def test_seeded_base_prices_are_plausible() -> None:
    market = SeededMarket()
    btc = Decimal(json.loads(market.day("BTCUSDT", DAY).rows()[0])[1])
    eth = Decimal(json.loads(market.day("ETHUSDT", DAY).rows()[0])[1])
    assert 20_000 < btc < 200_000
    assert 1_000 < eth < 10_000
    assert len(DEFAULT_SYMBOLS) >= 60
    assert {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ETHBTC"} <= set(
        DEFAULT_SYMBOLS)


def test_overlapping_windows_return_identical_klines() -> None:
    feed = MarketFeed()
    start = DAY * DAY_MS + 23 * HOUR_MS
    first = feed.klines("BTCUSDT", MINUTE_MS, start_ms=start, end_ms=None, limit=1000,
                        now_ms=NOW)
    later = MarketFeed().klines("BTCUSDT", MINUTE_MS, start_ms=start + 300 * MINUTE_MS,
                                end_ms=None, limit=1000, now_ms=NOW)
    assert len(first) == len(later) == 1000
    assert first[300:] == later[:700]
    backwards = feed.klines("BTCUSDT", MINUTE_MS, start_ms=None, end_ms=start + 999 * MINUTE_MS,
                            limit=1000, now_ms=NOW)
    assert backwards == first


def test_interval_klines_aggregate_the_1m_klines() -> None:
    feed = MarketFeed()
    hours = decode(feed.klines("ETHUSDT", HOUR_MS, start_ms=DAY * DAY_MS, end_ms=None, limit=24,
                               now_ms=NOW))
    minutes = decode(feed.klines("ETHUSDT", MINUTE_MS, start_ms=DAY * DAY_MS, end_ms=None,
                                 limit=1000, now_ms=NOW))
    assert len(hours) == 24
    for hour, group in zip(hours, [minutes[i:i + 60] for i in range(0, 960, 60)], strict=False):
        assert hour[0] == group[0][0]
        assert hour[6] == group[0][0] + HOUR_MS - 1
        assert hour[1] == group[0][1]
        assert hour[4] == group[-1][4]
        assert Decimal(hour[2]) == max(Decimal(m[2]) for m in group)
        assert Decimal(hour[3]) == min(Decimal(m[3]) for m in group)
        assert Decimal(hour[5]) == sum(Decimal(m[5]) for m in group)
        assert hour[8] == sum(m[8] for m in group)
    days = decode(feed.klines("ETHUSDT", DAY_MS, start_ms=DAY * DAY_MS, end_ms=None, limit=2,
                              now_ms=NOW))
    assert [d[0] for d in days] == [DAY * DAY_MS, (DAY + 1) * DAY_MS]
    assert days[0][1] == hours[0][1]


def test_future_klines_are_not_served_and_the_open_one_is_as_of_now() -> None:
    feed = MarketFeed()
    latest = decode(feed.klines("BTCUSDT", MINUTE_MS, start_ms=None, end_ms=None, limit=5,
                                now_ms=NOW))
    current_open = NOW // MINUTE_MS * MINUTE_MS
    assert latest[-1][0] == current_open
    assert [r[0] for r in latest] == [current_open - i * MINUTE_MS for i in range(4, -1, -1)]
    after = decode(feed.klines("BTCUSDT", MINUTE_MS, start_ms=current_open, end_ms=None,
                               limit=5, now_ms=current_open + MINUTE_MS))
    finished = after[0]
    assert latest[-1][6] == finished[6] == current_open + MINUTE_MS - 1
    assert latest[-1][1] == finished[1]
    assert Decimal(latest[-1][5]) < Decimal(finished[5])
    assert latest[-1][8] < finished[8]
    assert latest[:-1] == decode(feed.klines("BTCUSDT", MINUTE_MS, start_ms=latest[0][0],
                                             end_ms=None, limit=4, now_ms=NOW + HOUR_MS))
    hour = decode(feed.klines("BTCUSDT", HOUR_MS, start_ms=None, end_ms=None, limit=1,
                              now_ms=NOW))[0]
    assert hour[0] == NOW // HOUR_MS * HOUR_MS
    assert hour[4] == latest[-1][4]
    assert feed.klines("BTCUSDT", MINUTE_MS, start_ms=NOW + MINUTE_MS, end_ms=None, limit=5,
                       now_ms=NOW) == []


def test_seeded_trades_add_up_to_their_kline() -> None:
    block = SeededMarket().day("XRPUSDT", DAY)
    spec = symbol_spec("XRPUSDT")
    k = block.kline(600)
    tape = minute_trades(spec, k, first_agg_id=10, first_trade_id=100)
    prices, qty = tape.price.tolist(), tape.qty.tolist()
    assert prices[0] == k.open
    assert prices[-1] == k.close
    assert max(prices) == k.high
    assert min(prices) == k.low
    assert sum(qty) == k.volume
    assert sum(q for q, m in zip(qty, tape.buyer_maker.tolist(), strict=True) if not m) == (
        k.taker_base)
    assert int(tape.last_id[-1]) - 100 + 1 == k.trades
    assert tape.first_id.tolist()[1:] == (tape.last_id[:-1] + 1).tolist()
    assert k.open_ms <= int(tape.time.min()) <= int(tape.time.max()) <= k.close_ms
    assert partial_kline(k, tape, k.close_ms)._replace(quote_volume=0, taker_quote=0) == (
        k._replace(quote_volume=0, taker_quote=0))


# ----------------------------------------------------------------------------- replay


@pytest.mark.parametrize("name", [
    "BTCUSDT-1m-2017-08-17.csv",
    "BTCUSDT-1m-2019-05-15.csv",
    "BTCUSDT-1m-2020-03-12.csv",
    "BTCUSDT-1m-2024-12-31.csv",
    "BTCUSDT-1m-2025-01-01.csv",
])
def test_replay_rows_equal_the_csv_strings(name: str) -> None:
    expected = [expected_wire(f) for f in csv_rows(name)]
    day = day_of(date.fromisoformat(name[len("BTCUSDT-1m-"):-len(".csv")]))
    rows = ReplayMarket(replay_folder()).day("BTCUSDT", day).rows()
    assert decode(rows) == expected
    first = csv_rows(name)[0]
    assert f'"{first[1]}","{first[2]}","{first[3]}","{first[4]}","{first[5]}"'.encode() in rows[0]


def test_replay_normalises_microsecond_files_to_milliseconds() -> None:
    rows = decode(ReplayMarket(replay_folder()).day("BTCUSDT", day_of(date(2025, 1, 1))).rows())
    assert rows[0][0] == 1735689600000
    assert rows[0][6] == 1735689659999
    assert rows[-1][0] == 1735689600000 + DAY_MS - MINUTE_MS


def test_replay_keeps_the_2019_outage_gap() -> None:
    start = day_start_ms(date(2019, 5, 15))
    block = ReplayMarket(replay_folder()).day("BTCUSDT", start // DAY_MS)
    assert len(block) == 840
    gaps = missing_ranges(block.open_ms.tolist(), start, start + DAY_MS, MINUTE_MS)
    assert count_missing(gaps, MINUTE_MS) == 600
    assert gaps == [(datetime_to_ms(datetime(2019, 5, 15, 3, tzinfo=UTC)),
                     datetime_to_ms(datetime(2019, 5, 15, 12, 59, tzinfo=UTC)))]
    hours = decode(MarketFeed(ReplayMarket(replay_folder())).klines(
        "BTCUSDT", HOUR_MS, start_ms=start, end_ms=start + DAY_MS - 1, limit=1000,
        now_ms=start + 10 * DAY_MS))
    assert len(hours) == 14  # 10 hours of the outage have no kline at all
    assert Decimal(hours[0][5]) == sum(Decimal(r[5]) for r in decode(block.rows()[:60]))


def test_replay_deduplicates_day_and_month_files(tmp_path: Path) -> None:
    name = "BTCUSDT-1m-2019-05.csv.xz"
    (tmp_path / name).symlink_to(replay_folder() / name)
    month_only = ReplayMarket(tmp_path).day("BTCUSDT", day_of(date(2019, 5, 15))).rows()
    both = ReplayMarket(replay_folder()).day("BTCUSDT", day_of(date(2019, 5, 15))).rows()
    assert both == month_only
    assert len(both) == 840
    assert len(ReplayMarket(tmp_path).day("BTCUSDT", day_of(date(2019, 5, 16)))) == 1440


def test_replayed_symbols_come_only_from_the_recording() -> None:
    feed = MarketFeed(ReplayMarket(replay_folder()))
    now = day_start_ms(date(2025, 2, 1))
    assert feed.is_replayed("BTCUSDT")
    assert not feed.is_replayed("ETHUSDT")
    outside = day_start_ms(date(2023, 6, 1))
    assert feed.klines("BTCUSDT", MINUTE_MS, start_ms=outside, end_ms=outside + DAY_MS - 1,
                       limit=1000, now_ms=now) == []
    assert len(feed.klines("ETHUSDT", MINUTE_MS, start_ms=outside, end_ms=None, limit=1000,
                           now_ms=now)) == 1000
    newest = decode(feed.klines("BTCUSDT", MINUTE_MS, start_ms=None, end_ms=None, limit=2,
                                now_ms=now))
    assert newest[-1][0] == day_start_ms(date(2025, 2, 1)) - MINUTE_MS  # end of the recording
    first = decode(feed.klines("BTCUSDT", MINUTE_MS, start_ms=0, end_ms=None, limit=1,
                               now_ms=now))
    assert first[0][0] == 1502942400000  # the first recorded minute, 2017-08-17 04:00


def test_replayed_trades_add_up_to_the_recorded_kline() -> None:
    block = ReplayMarket(replay_folder()).day("BTCUSDT", day_of(date(2020, 3, 12)))
    k = block.kline(700)
    tape = minute_trades(symbol_spec("BTCUSDT"), k, first_agg_id=0, first_trade_id=0)
    assert sum(tape.qty.tolist()) == k.volume
    assert tape.price.tolist()[0] == k.open
    assert tape.price.tolist()[-1] == k.close
    assert max(tape.price.tolist()) == k.high
    assert int(tape.last_id[-1]) + 1 == k.trades


def test_kline_block_concat_and_take_keep_rows() -> None:
    market = SeededMarket()
    a, b = market.day("BNBUSDT", DAY), market.day("BNBUSDT", DAY + 1)
    joined = KlineBlock.concat([a, b])
    assert len(joined) == 2880
    assert joined.rows()[1439:1441] == [a.rows()[-1], b.rows()[0]]
    assert joined.take(np.array([0, 1440])).rows() == [a.rows()[0], b.rows()[0]]


def test_missing_replay_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ReplayMarket(tmp_path / "nope")
