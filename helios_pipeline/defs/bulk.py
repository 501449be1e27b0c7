"""The bulk-archive path of a candle run: what it logs and alerts around ``batch.bulk``.

A run whose exchange has a bulk archive (``ExchangeResource.bulk_url``) takes closed periods
from it (``batch.bulk.ingest_minutes_bulk``). Here the run's log gets one line per chunk (days
from archive files, days from REST, REST weight spent), one warning per file that fell back to
REST (naming the file and why), and every cross-check difference becomes a quality alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import dagster as dg

from helios_pipeline.batch.bulk import BulkReport, ingest_minutes_bulk
from helios_pipeline.batch.ingest import MinuteDay, Stores
from helios_pipeline.exchanges.bulk_archive import BulkArchiveClient
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.quality.alerts import Alert, AlertManager
from helios_pipeline.validation.rules import ValidationThresholds

CROSS_CHECK_RULE = "bulk_archive.cross_check"


async def ingest_from_archive(
    log: dg.DagsterLogManager, client: ExchangeClient, bulk_url: str, stores: Stores,
    symbol: str, days: Sequence[date], thresholds: ValidationThresholds,
    alerts: AlertManager | None, reference: ExchangeClient | None = None,
) -> list[MinuteDay]:
    """Store ``days`` through the archive path; log, warn and alert about what it did."""
    async with BulkArchiveClient(bulk_url) as archive:
        minutes, report = await ingest_minutes_bulk(client, archive, stores, symbol, days,
                                                    thresholds, reference)
    for fallback in report.fallbacks:
        log.warning(fallback.message())
    log.info(summary(symbol, report))
    for mismatch in report.mismatches:
        alert = Alert("warning", f"{client.exchange_id}:{symbol} bulk archive differs from REST",
                      f"{mismatch.message()} The month's archive data was not used; its days "
                      "were fetched through REST.", symbol, CROSS_CHECK_RULE, None,
                      datetime.now(tz=UTC))
        if alerts is not None:
            await alerts.send(alert)
        else:
            log.warning(f"{alert.title}: {alert.message}")
    return minutes


def summary(symbol: str, report: BulkReport) -> str:
    """``BTC/USDT: 31 days from 1 archive file(s), 0 days from REST, REST weight 6``."""
    return (f"{symbol}: {len(report.sources)} days from {report.files} archive file(s), "
            f"{len(report.rest_days)} days from REST, REST weight {report.rest_weight}")
