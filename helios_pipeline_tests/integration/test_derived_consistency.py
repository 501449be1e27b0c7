"""Derived timeframes match the exchange's own candles of that timeframe, exactly."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from helios_pipeline.batch.derived import ConsistencyReport, compare_with_exchange, derive_day
from helios_pipeline.batch.ohlcv import ingest_ohlcv_day
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore

DAY = date(2024, 2, 20)


def compare(base_url: str, store: CandleStore, timeframe: Timeframe) -> ConsistencyReport:
    async def run() -> ConsistencyReport:
        async with ExchangeClient("binance", base_url=base_url) as client:
            return await compare_with_exchange(client, store, "BTC/USDT", timeframe, DAY)

    return asyncio.run(run())


def prepare(base_url: str, data_dir: Path) -> tuple[CandleStore, MetadataStore]:
    store, catalog = CandleStore(data_dir), MetadataStore(data_dir / "meta.sqlite")

    async def run() -> None:
        async with ExchangeClient("binance", base_url=base_url) as client:
            await ingest_ohlcv_day(client, store, catalog, "BTC/USDT", DAY)

    asyncio.run(run())
    return store, catalog


def test_derived_candles_equal_the_exchanges(sim: SimExchangeServer, tmp_path: Path) -> None:
    store, catalog = prepare(sim.base_url, tmp_path)
    for timeframe in (Timeframe.M5, Timeframe.H1, Timeframe.D1):
        report = derive_day(store, catalog, "binance", "BTC/USDT", DAY, timeframe)
        assert report.record.source == "derived from ohlcv_1m v1"
        assert report.partial_buckets == 0
        consistency = compare(sim.base_url, store, timeframe)
        assert consistency.consistent, consistency
        assert consistency.compared == 1440 // (timeframe.ms // 60_000)


def test_a_differing_candle_is_reported(sim: SimExchangeServer, tmp_path: Path) -> None:
    store, catalog = prepare(sim.base_url, tmp_path)
    derive_day(store, catalog, "binance", "BTC/USDT", DAY, Timeframe.H1)
    candles = store.load("BTC/USDT", Timeframe.H1, DAY)
    candles[5] = replace(candles[5], close=candles[5].close + Decimal("0.01"))
    store.store("BTC/USDT", Timeframe.H1, DAY, candles)
    report = compare(sim.base_url, store, Timeframe.H1)
    assert not report.consistent
    assert [(m.field, Decimal(m.ours) - Decimal(m.exchange)) for m in report.mismatches] == [
        ("close", Decimal("0.01"))
    ]
