"""ticker_snapshots_live_candles_match_rest_check: live candles in real Redis vs simulator REST.

The live candles are built by LiveCandleBuilder from the simulator's own aggregate trades of a
closed hour (``/api/v3/aggTrades``, the tape its klines are made of), written to a real Redis by
HotCandleWriter, and checked in the sensor-launched ``ticker_snapshots_job`` run against the
simulator's REST klines, fetched by the check through ExchangeResource.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import redis

from helios_pipeline.defs.build import TICKERS_JOB, build_defs
from helios_pipeline.defs.live_candles import LIVE_CANDLES_CHECK
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import MINUTE_MS, datetime_to_ms
from helios_pipeline.realtime.candles import LiveCandleBuilder
from helios_pipeline.settings import Settings
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.hot.keys import candle_key
from helios_pipeline.storage.hot.live_candles import HotCandleWriter, decode_candle, encode_candle
from helios_pipeline.storage.hot.store import HotStore

SYMBOL, STORAGE_ID = "XRP/USDT", "XRPUSDT"  # hundreds of trades a minute, not thousands
RETENTION_MS = 3 * 3_600_000


def closed_hour() -> datetime:
    """The last UTC hour that closed at least 15 s ago (so its candles and ticks are final)."""
    now = datetime.now(tz=UTC) - timedelta(seconds=15)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def agg_trades(sim: SimExchangeServer, query: str) -> list[dict[str, Any]]:
    url = f"{sim.api_url}/aggTrades?symbol={STORAGE_ID}&limit=1000&{query}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local simulator
        trades: list[dict[str, Any]] = json.loads(response.read())
    return trades


def sim_trades(sim: SimExchangeServer, open_ms: int) -> list[dict[str, Any]]:
    """The simulator's aggregate trades of the minute opening at ``open_ms`` (every page)."""
    end = open_ms + MINUTE_MS - 1
    trades = page = agg_trades(sim, f"startTime={open_ms}&endTime={end}")
    while len(page) == 1000:  # a full page: more may follow, by id
        page = [t for t in agg_trades(sim, f"fromId={page[-1]['a'] + 1}") if t["T"] <= end]
        trades = trades + page
    assert trades, f"no trades at {open_ms}"
    return trades


def live_candles(sim: SimExchangeServer, start_ms: int) -> list[LiveCandle]:
    """The hour's live candles, built from the simulator's trades as the stream would."""
    builder = LiveCandleBuilder(SYMBOL)
    out: dict[int, LiveCandle] = {}
    for minute in range(60):
        for t in sim_trades(sim, start_ms + minute * MINUTE_MS):
            for candle in builder.add(t["T"], Decimal(t["p"]), Decimal(t["q"]), t["T"] + 3):
                out[candle.open_ms] = candle
    for candle in builder.close_due(start_ms + 60 * MINUTE_MS):
        out[candle.open_ms] = candle
    return sorted(out.values(), key=lambda c: c.open_ms)


def store_live_hour(redis_url: str, candles: list[LiveCandle], start_ms: int) -> None:
    """Write the candles as the stream service does, plus ticker ticks for ticker_snapshots."""

    async def write() -> None:
        writer = HotCandleWriter(redis_url, "binance", RETENTION_MS)
        writer.add(candles)
        assert await writer.flush() == len(candles)
        await writer.aclose()

    asyncio.run(write())
    ticks = [Tick("binance", SYMBOL, "ticker", exchange_ts_ms=start_ms + i * MINUTE_MS,
                  received_ts_us=(start_ms + i * MINUTE_MS + 3) * 1000, price=Decimal("0.5"),
                  bid=Decimal("0.4999"), ask=Decimal("0.5001"), qty=Decimal(1), event_id=i,
                  seq=(start_ms + i * MINUTE_MS + 3) * 1000) for i in range(60)]
    hot = HotStore(redis_url, retention_ms=RETENTION_MS)
    hot.append(ticks)
    hot.close()


def run_partition(defs: dg.Definitions, instance: dg.DagsterInstance,
                  key: dg.MultiPartitionKey) -> dg.AssetCheckEvaluation:
    """Run ticker_snapshots_job for ``key``; the live-candle check's evaluation in that run."""
    run = defs.resolve_job_def(TICKERS_JOB).execute_in_process(instance=instance,
                                                               partition_key=key)
    assert run.success
    [evaluation] = [e for e in run.get_asset_check_evaluations()
                    if e.check_name == LIVE_CANDLES_CHECK]
    assert evaluation.partition == str(key)
    return evaluation


def value(evaluation: dg.AssetCheckEvaluation, name: str) -> Any:
    return evaluation.metadata[name].value


def test_live_candles_of_a_closed_hour_match_rest_then_tampering_is_named(
        sim: SimExchangeServer, settings: Settings, redis_url: str) -> None:
    hour = closed_hour()
    start_ms = datetime_to_ms(hour)
    candles = live_candles(sim, start_ms)
    assert len(candles) == 60
    assert all(c.complete and not c.amended for c in candles)
    store_live_hour(redis_url, candles, start_ms)
    settings = replace(settings, redis_url=redis_url, hot_retention_minutes=180,
                       ticker_start_date=f"{hour - timedelta(days=1):%Y-%m-%d}")
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("ticker_snapshots_sensor")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", [STORAGE_ID])
        with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        [request] = result.run_requests or []
        key = request.partition_key
        assert isinstance(key, dg.MultiPartitionKey)
        assert str(key) == f"{hour:%Y-%m-%d-%H:%M}|{STORAGE_ID}"

        agreed = run_partition(defs, instance, key)
        assert agreed.passed, agreed.metadata
        assert [value(agreed, n) for n in ("live_candles", "rest_candles", "compared", "matched",
                                           "missing_live", "missing_rest", "mismatched")] == [
            60, 60, 60, 60, 0, 0, 0]
        assert value(agreed, "first_differences") == "none"

        # Tamper: one close a tick off (and marked amended by a late trade), one minute gone.
        client = redis.Redis.from_url(redis_url)
        rkey = candle_key("binance", SYMBOL)
        tampered_ms, deleted_ms = start_ms + 7 * MINUTE_MS, start_ms + 20 * MINUTE_MS
        original = decode_candle(client.hget(rkey, str(tampered_ms)))  # type: ignore[arg-type]
        changed = replace(original, close=original.close + Decimal("0.00001"), version=2,
                          amended=True)
        client.hset(rkey, str(tampered_ms), encode_candle(changed))
        assert client.hdel(rkey, str(deleted_ms)) == 1

        differs = run_partition(defs, instance, key)
        assert not differs.passed
        assert differs.severity == dg.AssetCheckSeverity.WARN
        assert [value(differs, n) for n in ("live_candles", "compared", "matched",
                                            "missing_live", "missing_rest", "mismatched",
                                            "amended")] == [59, 60, 58, 1, 0, 1, 1]
        lines = value(differs, "first_differences").splitlines()
        assert lines == [
            f"{hour:%H}:07 close: live {changed.close} != REST {original.close} (amended, v2)",
            f"{hour:%H}:20 missing live: REST has a candle (volume "
            f"{candles[20].volume}), the stream none",
        ]
        assert value(differs, "amended_minutes") == f"{hour:%H}:07"
        assert "2 of 60 compared minutes differ" in (differs.description or "")

        # No live candles at all: the check must not pass quietly.
        client.delete(rkey)
        client.close()
        absent = run_partition(defs, instance, key)
        assert not absent.passed
        assert absent.severity == dg.AssetCheckSeverity.WARN
        assert value(absent, "live_candles") == 0
        assert "No live 1m candles of XRP/USDT" in (absent.description or "")
        assert "`helios stream` was not running" in (absent.description or "")
