"""The cold tier in Dagster: ``ohlcv_1m_archive`` (symbol x month) and its daily tier movement.

``ohlcv_1m_archive`` depends on the month's ``ohlcv_1m`` (and derived) day partitions through a
partition mapping, so lineage in the UI shows which days a month file was built from. A
materialisation compacts the month into the archive (``batch.archive.compact_month``), verifies
it and removes the daily files that have left the warm window. ``ohlcv_archive_schedule`` runs
every day at 03:00 UTC for each symbol's months that are new or still have warm files to trim.
"""


from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from helios_pipeline.batch.archive import Tiers, compact_month, months_to_move
from helios_pipeline.batch.derived import DERIVED_TIMEFRAMES
from helios_pipeline.defs.keys import OHLCV_1M, candle_key
from helios_pipeline.defs.partitions import DAY_DIM, SYMBOL_DIM, SYMBOLS, registered_symbols
from helios_pipeline.defs.resources import StorageResource
from helios_pipeline.domain.symbols import from_storage_id
from helios_pipeline.storage.archive import CandleArchive

OHLCV_1M_ARCHIVE = dg.AssetKey("ohlcv_1m_archive")
ARCHIVE_JOB = "ohlcv_archive_job"
MONTH_DIM = "month"


class ArchiveResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the cold tier lives and how long daily files stay warm after archiving."""

    exchange: str = "binance"
    archive_url: str | None = None
    warm_days: int = 30

    def archive(self, data_dir: Path) -> CandleArchive:
        """The archive (``HELIOS_ARCHIVE_URL``; default ``{data_dir}/archive``)."""
        return CandleArchive.for_data_dir(data_dir, self.archive_url)


def symbol_month_partitions(start_date: str) -> dg.MultiPartitionsDefinition:
    """Symbol x month partitions, months from ``start_date``'s to the last closed one."""
    first = date.fromisoformat(start_date).replace(day=1)
    months = dg.MonthlyPartitionsDefinition(start_date=first.isoformat(), timezone="UTC")
    return dg.MultiPartitionsDefinition({SYMBOL_DIM: SYMBOLS, MONTH_DIM: months})


def month_of_days() -> dg.MultiPartitionMapping:
    """A symbol-month depends on the same symbol's day partitions of that month."""
    return dg.MultiPartitionMapping({
        SYMBOL_DIM: dg.DimensionPartitionMapping(SYMBOL_DIM, dg.IdentityPartitionMapping()),
        DAY_DIM: dg.DimensionPartitionMapping(MONTH_DIM, dg.TimeWindowPartitionMapping()),
    })


def build_archive_asset(partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    """``ohlcv_1m_archive``: one month of a symbol's candles compacted into the cold tier."""
    sources = [OHLCV_1M, *(candle_key(tf) for tf in DERIVED_TIMEFRAMES)]

    @dg.asset(
        key=OHLCV_1M_ARCHIVE,
        partitions_def=partitions,
        deps=[dg.AssetDep(key, partition_mapping=month_of_days()) for key in sources],
        group_name="market_data",
        kinds={"parquet"},
        description=(
            "A closed month of a symbol's 1m (and 5m..1d) candles in one zstd Parquet file per "
            "timeframe under archive/ (or HELIOS_ARCHIVE_URL), verified row for row against "
            "the daily files; daily files older than HELIOS_WARM_DAYS are then removed."
        ),
    )
    def ohlcv_1m_archive(context: dg.AssetExecutionContext, storage: StorageResource,
                         archive: ArchiveResource) -> dg.MaterializeResult[None]:
        keys = partitions.get_partition_key_from_str(context.partition_key).keys_by_dimension
        symbol = from_storage_id(keys[SYMBOL_DIM])
        month = date.fromisoformat(keys[MONTH_DIM])
        tiers = Tiers(storage.candles(), archive.archive(storage.root), storage.metadata(),
                      archive.exchange)
        done = compact_month(tiers, symbol, month, datetime.now(UTC).date(), archive.warm_days)
        for item in done:
            context.log.info(
                f"{symbol} {item.timeframe.value} {month:%Y-%m}: {item.archived.rows} rows "
                f"{'written' if item.written else 'unchanged'}, {len(item.removed)} daily files "
                f"removed, {len(item.kept)} kept warm")
        return dg.MaterializeResult(metadata={
            "rows": sum(c.archived.rows for c in done if c.timeframe.value == "1m"),
            "timeframes": [c.timeframe.value for c in done],
            "content_hash_1m": next((c.archived.content_hash for c in done
                                     if c.timeframe.value == "1m"), ""),
            "daily_files_removed": sum(len(c.removed) for c in done),
            "path_1m": next((c.archived.path for c in done if c.timeframe.value == "1m"), ""),
        })

    return ohlcv_1m_archive


def build_archive_schedule(job_name: str, start_date: str, warm_days: int
                           ) -> dg.ScheduleDefinition:
    """Every day at 03:00 UTC, per symbol, the months tier movement has work in.

    Those are the months that just closed or still have daily files inside the warm window to
    trim (``batch.archive.months_to_move``).
    """

    @dg.schedule(
        name="ohlcv_archive_schedule",
        job_name=job_name,
        cron_schedule="0 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Moves closed months to the cold archive and trims warm daily files.",
    )
    def ohlcv_archive_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        today = context.scheduled_execution_time.date()
        months = months_to_move(today, warm_days, date.fromisoformat(start_date))
        for storage_id in registered_symbols(context.instance):
            for month in months:
                key = dg.MultiPartitionKey({SYMBOL_DIM: storage_id, MONTH_DIM: month.isoformat()})
                yield dg.RunRequest(run_key=f"{key}@{today}", partition_key=key)

    return ohlcv_archive_schedule
