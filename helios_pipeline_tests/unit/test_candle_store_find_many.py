"""``CandleStore.find_many`` answers exactly what ``find`` answers day by day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from helios_pipeline.domain.timeframe import Timeframe, days_between
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline_tests.archive_data import day_table


def test_find_many_equals_find(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    stored = [date(2024, 1, 31), date(2024, 2, 2), date(2024, 4, 1)]  # March: no folder at all
    for day in stored:
        store.store_table("BTC/USDT", Timeframe.M1, day, day_table(day, 3))
    days = days_between(date(2024, 1, 30), date(2024, 4, 2))
    found = store.find_many("BTC/USDT", Timeframe.M1, days)
    assert found == {d: p for d in days if (p := store.find("BTC/USDT", Timeframe.M1, d))}
    assert sorted(found) == stored
    assert store.find_many("BTC/USDT", Timeframe.H1, days) == {}
    assert store.find_many("BTC/USDT", Timeframe.M1, days, "okx") == {}
