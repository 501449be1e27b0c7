"""Asset check on ``ticker_snapshots``: the stream's live 1m candles of the hour match REST.

``ticker_snapshots_live_candles_match_rest_check`` runs in the same run as each sensor-launched
symbol x hour partition (``ticker_snapshots_job`` selects it). It reads the hour's live candles
from Redis (:meth:`RealtimeMarketDataResource.hour_candles`), fetches the hour's REST 1m candles
with the client ``ohlcv_1m`` ingestion uses (:class:`ExchangeResource`) and compares them with
:func:`helios_pipeline.realtime.reconcile.reconcile_candles`. Differences are a warning: the
REST candles are what ``ohlcv_1m`` stores, so the check says where the stream went wrong.
"""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from helios_pipeline.batch.partition_checks import SHOWN
from helios_pipeline.defs.realtime import (
    TICKERS,
    RealtimeMarketDataResource,
    parse_ticker_key,
    require_closed_hour,
)
from helios_pipeline.defs.resources import ExchangeResource
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.timeframe import datetime_to_ms, ms_to_datetime
from helios_pipeline.realtime.reconcile import Reconciliation, reconcile_hour

LIVE_CANDLES_CHECK = "ticker_snapshots_live_candles_match_rest_check"


def live_candles_check_key() -> dg.AssetCheckKey:
    """Key of ``ticker_snapshots_live_candles_match_rest_check``."""
    return dg.AssetCheckKey(TICKERS, LIVE_CANDLES_CHECK)


def build_live_candles_check(partitions: dg.MultiPartitionsDefinition) -> dg.AssetChecksDefinition:
    """The live-vs-REST 1m candle check of each ``ticker_snapshots`` symbol x hour."""

    @dg.asset_check(
        asset=TICKERS, name=LIVE_CANDLES_CHECK, partitions_def=partitions,
        description="The hour's live 1m candles (built by `helios stream` from trades, kept in "
                    "Redis) equal the exchange's REST 1m candles, minute by minute and value "
                    "for value; warns with the differing minutes and fields otherwise.",
    )
    def ticker_snapshots_live_candles_match_rest_check(
        context: dg.AssetCheckExecutionContext, realtime: RealtimeMarketDataResource,
        exchange: ExchangeResource,
    ) -> dg.AssetCheckResult:
        symbol, hour = parse_ticker_key(partitions, context.partition_key)
        require_closed_hour(symbol, hour)
        live = realtime.hour_candles(symbol, hour)
        retention = timedelta(minutes=realtime.retention_minutes)
        if not live:
            return _no_live_candles(symbol, hour, retention)
        report = asyncio.run(_reconcile(exchange, symbol, hour, live))
        return dg.AssetCheckResult(
            passed=report.agrees, severity=dg.AssetCheckSeverity.WARN,
            metadata=reconciliation_metadata(report),
            description=_summary(symbol, report, datetime.now(tz=UTC) - retention),
        )

    return ticker_snapshots_live_candles_match_rest_check


async def _reconcile(
    exchange: ExchangeResource, symbol: str, hour: datetime, live: Sequence[LiveCandle]
) -> Reconciliation:
    async with exchange.client() as client:
        return await reconcile_hour(client, symbol, datetime_to_ms(hour), live)


def reconciliation_metadata(report: Reconciliation) -> dict[str, dg.MetadataValue]:
    """Counts, amended minutes and the first differences of one hour, as check metadata."""
    amended = [f"{ms_to_datetime(m):%H:%M}" for m in report.amended]
    shown = [d.describe() for d in report.differences[:SHOWN]]
    return {
        "live_candles": dg.MetadataValue.int(report.live_candles),
        "rest_candles": dg.MetadataValue.int(report.rest_candles),
        "compared": dg.MetadataValue.int(report.compared),
        "matched": dg.MetadataValue.int(report.matched),
        "missing_live": dg.MetadataValue.int(len(report.missing_live)),
        "missing_rest": dg.MetadataValue.int(len(report.missing_rest)),
        "mismatched": dg.MetadataValue.int(len(report.mismatched)),
        "incomplete_skipped": dg.MetadataValue.int(len(report.incomplete)),
        "amended": dg.MetadataValue.int(len(report.amended)),
        "amended_minutes": dg.MetadataValue.text(", ".join(amended[:SHOWN]) or "none"),
        "differences": dg.MetadataValue.int(len(report.differences)),
        "first_differences": dg.MetadataValue.text("\n".join(shown) or "none"),
    }


def _summary(symbol: str, report: Reconciliation, kept_since: datetime) -> str:
    if report.agrees:
        return (f"{symbol}: all {report.compared} compared minutes agree with REST "
                f"({len(report.incomplete)} incomplete minutes skipped).")
    text = (f"{symbol}: {report.compared - report.matched} of {report.compared} compared minutes "
            "differ from the REST 1m candles (see first_differences). ohlcv_1m keeps the REST "
            "values; look at the stream's health (shed ticks, reconnects, late trades) for "
            "that hour.")
    expired = sum(m < datetime_to_ms(kept_since) for m in report.missing_live)
    if expired:
        text += (f" {expired} of the minutes missing live opened before {kept_since:%H:%M} UTC "
                 "and may just have expired from Redis: the check is meant to run as the hour "
                 "closes.")
    return text


def _no_live_candles(symbol: str, hour: datetime, retention: timedelta) -> dg.AssetCheckResult:
    minutes = int(retention.total_seconds() // 60)
    expired = hour < datetime.now(tz=UTC) - retention
    if expired:
        reason = (f"the hour has expired from Redis, which keeps {minutes} minutes of candles; "
                  "the check is meant to run as the hour closes (ticker_snapshots_sensor)")
    else:
        reason = ("`helios stream` was not running, or not streaming trades, for that hour; "
                  "start it (trade streams on) to have the next hours reconciled")
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.WARN,
        description=f"No live 1m candles of {symbol} for {hour:%Y-%m-%d %H}:00 UTC in Redis, so "
                    f"nothing was reconciled with REST: {reason}. ohlcv_1m still holds the hour "
                    "from REST.",
        metadata={"live_candles": dg.MetadataValue.int(0),
                  "reason": dg.MetadataValue.text("expired" if expired else "stream not running")},
    )
