"""``ohlcv_backfill_job``: one symbol's range of days in one run, for ``helios backfill``.

Dagster's public API puts a single partition key on a run launched from Python; only its
backfill daemon (and its own CLI) puts a range on one. So backfills launched from the CLI or
Python run this job instead: its config names the symbol and the days, its one step does exactly
what a ranged run of the candle assets does (``defs.candle_run``: one fetch per chunk, a
materialisation and check results for every partition, each naming its partition) and ingests
the reference venue's candles when one is configured. No run tags are involved, so any range
can run again, any number of times.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES
from helios_pipeline.defs.candle_run import CHUNK_DAYS, CandleEvent, CandleRun
from helios_pipeline.defs.checks import (
    CONSISTENCY_CHECK,
    EXPECTATIONS_CHECK,
    GAP_CHECK,
    SCHEMA_CHECK,
)
from helios_pipeline.defs.cross import reference_candles
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.resources import (
    AlertsResource,
    ExchangeResource,
    ReferenceExchangeResource,
    StorageResource,
)
from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.domain.timeframe import days_between, parse_day
from helios_pipeline.validation.rules import ValidationThresholds

BACKFILL_JOB = "ohlcv_backfill_job"
ASSETS = frozenset({OHLCV_1M, *(candle_key(tf) for tf in DERIVED_TIMEFRAMES)})
CHECKS = frozenset({SCHEMA_CHECK, EXPECTATIONS_CHECK, GAP_CHECK, CONSISTENCY_CHECK})


class BackfillRange(dg.Config):
    """The days of one symbol to backfill."""

    symbol: str
    start: str  # YYYY-MM-DD
    end: str  # YYYY-MM-DD, inclusive

    def days(self) -> list[date]:
        """The days of the range (refused when ``end`` is before ``start``)."""
        return days_between(parse_day(self.start), parse_day(self.end))


def build_backfill_job(exchange_id: str, thresholds: ValidationThresholds) -> dg.JobDefinition:
    """The job ``run_backfill`` launches once per symbol and month."""

    @dg.op(out={}, pool=f"exchange_{exchange_id}",
           description="Fetches, checks and derives a symbol's days: ohlcv_1m, 5m..1d and their "
                       "checks, a result per partition (and the reference venue's 1m candles).")
    def backfill_candles(
        context: dg.OpExecutionContext, config: BackfillRange, exchange: ExchangeResource,
        reference_exchange: ReferenceExchangeResource, storage: StorageResource,
        alerts: AlertsResource,
    ) -> Iterator[CandleEvent]:
        symbol, days = normalize_symbol(config.symbol), config.days()
        venue = reference_exchange.venue()
        run = CandleRun(context.log, exchange, storage, thresholds, ASSETS, CHECKS,
                        alerts=alerts.manager(), reference=venue)
        for start in range(0, len(days), CHUNK_DAYS):
            yield from run.chunk(symbol, days[start : start + CHUNK_DAYS])
        if venue is not None:
            yield from reference_candles(venue, storage, thresholds, symbol, days)

    @dg.job(name=BACKFILL_JOB, description="Backfill of one symbol's days (helios backfill).")
    def ohlcv_backfill_job() -> None:
        backfill_candles()

    return ohlcv_backfill_job
