"""The realtime path in Dagster: the hot tier as a resource, hourly ticker files, stream health.

The stream service (``helios stream``) keeps the last hour of validated ticks in Redis. When an
hour closes, ``ticker_snapshots_sensor`` launches a run for that symbol x hour, and the
``ticker_snapshots`` asset writes the hour's ticks to ``ticker_{YYYYMMDD}_{HH}`` (plus the
rolling ``current/realtime_ticker`` and ``current/realtime_ohlcv_1m``, the live 1m candles of the
last 24 hours), so streamed data lands in warm storage. The asset
check on each hour (``defs/live_candles``) reads the hour's live 1m candles through
:meth:`RealtimeMarketDataResource.hour_candles`.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg

from helios_pipeline.defs.partitions import SYMBOL_DIM, SYMBOLS, registered_symbols
from helios_pipeline.defs.resources import AlertsResource, StorageResource
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.symbols import from_storage_id
from helios_pipeline.domain.ticks import Tick, TickKind
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.quality.stream_watch import StreamThresholds, WatchState, watch
from helios_pipeline.settings import Settings
from helios_pipeline.storage.current_candles import store_current_candles
from helios_pipeline.storage.hot.divergence import DivergenceState, load_divergence
from helios_pipeline.storage.hot.live_indicators import LiveIndicatorValues, load_live_indicators
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.ticker_files import store_current_ticker, store_ticker_hour

TICKERS = dg.AssetKey("ticker_snapshots")
HOUR_DIM = "hour"
SNAPSHOT_KINDS: tuple[TickKind, ...] = ("ticker", "book")
# Ticks are filed by exchange time; a tick received this late after its hour still belongs to it.
ARRIVAL_SLACK_MS = 5_000
HEALTH_FIELDS = ("lag_ms", "messages", "valid", "quarantined", "shed", "reconnects")


class RealtimeMarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The hot tier: latest prices, recent ticks, live indicators, divergence, stream health."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    exchange: str = "binance"
    retention_minutes: int = Settings.hot_retention_minutes

    def store(self) -> HotStore:
        """A hot-store client (close it when done)."""
        return HotStore(self.redis_url, self.retention_minutes * 60_000, exchange=self.exchange)

    def recent_ticks(self, symbol: str, since_ms: int) -> list[Tick]:
        """Ticker and book-top ticks of ``symbol`` received at or after ``since_ms``."""
        hot = self.store()
        try:
            return [t for kind in SNAPSHOT_KINDS for t in hot.recent(symbol, kind, since_ms)]
        finally:
            hot.close()

    def hour_ticks(self, symbol: str, hour: datetime) -> list[Tick]:
        """Ticker and book-top ticks of ``symbol`` whose exchange time is in the UTC ``hour``."""
        start = datetime_to_ms(hour)
        ticks = self.recent_ticks(symbol, start - ARRIVAL_SLACK_MS)
        return [t for t in ticks if start <= t.exchange_ts_ms < start + 3_600_000]

    def hour_candles(self, symbol: str, hour: datetime) -> list[LiveCandle]:
        """Live 1m candles of ``symbol`` opening in the UTC ``hour``, oldest first.

        Each is the newest version the stream service wrote (``amended`` when a late trade
        changed it). Empty when the stream did not build candles for that hour or Redis has
        already dropped them (it keeps ``retention_minutes``).
        """
        start = datetime_to_ms(hour)
        candles = self.live_candles(symbol)
        return [c for c in candles if start <= c.open_ms < start + Timeframe.H1.ms]

    def live_candles(self, symbol: str) -> list[LiveCandle]:
        """Every live 1m candle of ``symbol`` Redis holds, oldest first."""
        hot = self.store()
        try:
            return hot.live_candles(symbol)
        finally:
            hot.close()

    def indicators(self, symbol: str, timeframe: str = "1m") -> LiveIndicatorValues | None:
        """The live indicators the stream service wrote for ``symbol``'s last closed candle.

        ``None`` when it keeps none for that symbol and timeframe (not streamed, not one of its
        ``indicator_timeframes``, or stopped longer than the retention ago).
        """
        hot = self.store()
        try:
            return load_live_indicators(hot.client, self.exchange, symbol, timeframe)
        finally:
            hot.close()

    def divergence(self, symbol: str) -> DivergenceState | None:
        """The current comparison of ``symbol`` with the reference venue (``None``: none now).

        Written by the stream service when a reference venue is configured
        (``realtime.divergence_watch``); ``state`` says whether a divergence episode is open.
        """
        hot = self.store()
        try:
            return load_divergence(hot.client, self.exchange, symbol)
        finally:
            hot.close()

    def health(self) -> dict[str, str]:
        """The stream service's last published health, shards combined (empty when none)."""
        hot = self.store()
        try:
            return hot.stream_health()
        finally:
            hot.close()


def ticker_partitions(start_date: str) -> dg.MultiPartitionsDefinition:
    """Symbol x UTC hour."""
    hours = dg.HourlyPartitionsDefinition(start_date=f"{start_date}-00:00", timezone="UTC")
    return dg.MultiPartitionsDefinition({SYMBOL_DIM: SYMBOLS, HOUR_DIM: hours})


def parse_ticker_key(partitions: dg.MultiPartitionsDefinition, key: str) -> tuple[str, datetime]:
    """``(unified symbol, UTC hour start)`` of a ``ticker_snapshots`` partition key."""
    dims = partitions.get_partition_key_from_str(key).keys_by_dimension
    hour = datetime.strptime(dims[HOUR_DIM], "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
    return from_storage_id(dims[SYMBOL_DIM]), hour


def build_ticker_snapshots(partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    """``ticker_snapshots``: one file per symbol x closed UTC hour, from the hot tier."""

    @dg.asset(
        key=TICKERS, partitions_def=partitions, output_required=False, group_name="realtime",
        kinds={"redis", "parquet"},
        description="Streamed ticker/book-top ticks per symbol and UTC hour, flushed from Redis "
                    "to market_data/{SYMBOL}/{YYYY}/{MM}/ticker_{YYYYMMDD}_{HH}.parquet when the "
                    "hour closes (plus current/realtime_ticker, the rolling hour, and "
                    "current/realtime_ohlcv_1m, the live 1m candles of the last 24 hours).",
    )
    def ticker_snapshots(
        context: dg.AssetExecutionContext, realtime: RealtimeMarketDataResource,
        storage: StorageResource,
    ) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult[None]]:
        data_dir = storage.root
        for key in context.partition_keys:
            symbol, hour = parse_ticker_key(partitions, key)
            ticks = _closed_hour_ticks(realtime, symbol, hour)
            stored = store_ticker_hour(data_dir, symbol, hour, ticks)
            now_ms = datetime_to_ms(datetime.now(tz=UTC))
            store_current_ticker(data_dir, symbol, realtime.recent_ticks(symbol,
                                                                         now_ms - 3_600_000))
            store_current_candles(data_dir, symbol, realtime.live_candles(symbol), now_ms)
            metadata: dict[str, dg.RawMetadataValue] = {
                "rows": stored.rows, "path": dg.MetadataValue.path(str(stored.path)),
                "content_hash": stored.content_hash,
                "first_exchange_ts": min(t.exchange_ts_ms for t in ticks),
                "last_exchange_ts": max(t.exchange_ts_ms for t in ticks),
            }
            if context.has_partition_key:
                # An output (no I/O manager involved): the hour's asset checks in this run
                # depend on it, and a bare AssetMaterialization would leave them skipped.
                yield dg.MaterializeResult(metadata=metadata)
            else:
                yield dg.AssetMaterialization(asset_key=TICKERS, partition=key, metadata=metadata)

    return ticker_snapshots


def require_closed_hour(symbol: str, hour: datetime) -> None:
    """Refuse an hour that has not closed (plus the arrival slack) yet.

    Raises:
        dg.Failure: ``hour`` is still running.
    """
    if hour + timedelta(hours=1, milliseconds=ARRIVAL_SLACK_MS) > datetime.now(tz=UTC):
        raise dg.Failure(f"{symbol} hour {hour:%Y-%m-%d %H}:00 UTC has not closed yet; "
                         "its ticks are flushed and checked once it has.")


def _closed_hour_ticks(
    realtime: RealtimeMarketDataResource, symbol: str, hour: datetime
) -> list[Tick]:
    require_closed_hour(symbol, hour)
    ticks = realtime.hour_ticks(symbol, hour)
    if not ticks:
        raise dg.Failure(
            f"No ticks of {symbol} for {hour:%Y-%m-%d %H}:00 UTC in the hot tier (Redis keeps "
            f"{realtime.retention_minutes} minutes). Was `helios stream` running for it?"
        )
    return ticks


def closed_hours(now: datetime, retention: timedelta) -> list[datetime]:
    """Starts of the UTC hours that have closed and are still wholly in the hot tier."""
    current = now.replace(minute=0, second=0, microsecond=0)
    hours = []
    hour = current - timedelta(hours=1)
    while hour >= now - retention:
        if hour + timedelta(hours=1, milliseconds=ARRIVAL_SLACK_MS) <= now:
            hours.append(hour)
        hour -= timedelta(hours=1)
    return hours


def build_ticker_snapshots_sensor(
    partitions: dg.MultiPartitionsDefinition, job_name: str
) -> dg.SensorDefinition:
    """Launches ``ticker_snapshots`` for every symbol x hour that closed with ticks in Redis."""

    @dg.sensor(
        name="ticker_snapshots_sensor", job_name=job_name, minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When an hour closes, flushes each symbol's streamed ticks to its hourly file.",
    )
    def ticker_snapshots_sensor(
        context: dg.SensorEvaluationContext, realtime: RealtimeMarketDataResource
    ) -> dg.SensorResult:
        done = context.instance.get_materialized_partitions(TICKERS)
        symbols = registered_symbols(context.instance)
        retention = timedelta(minutes=realtime.retention_minutes)
        requests = []
        for hour in closed_hours(datetime.now(tz=UTC), retention):
            for storage_id in symbols:
                key = dg.MultiPartitionKey({SYMBOL_DIM: storage_id,
                                            HOUR_DIM: f"{hour:%Y-%m-%d-%H:%M}"})
                if str(key) not in done and realtime.hour_ticks(from_storage_id(storage_id), hour):
                    requests.append(dg.RunRequest(run_key=str(key), partition_key=key))
        return dg.SensorResult(run_requests=requests)

    return ticker_snapshots_sensor


def build_stream_health_sensor(thresholds: StreamThresholds) -> dg.SensorDefinition:
    """Records the stream service's health as observations; alerts once per problem episode."""

    @dg.sensor(
        name="stream_health_sensor", minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every 30 s: lag, reconnects and shed ticks of `helios stream`, as "
                    "observations on ticker_snapshots (see its Events tab); one alert when the "
                    f"stream goes down, lags over {thresholds.max_lag_ms} ms or sheds over "
                    f"{thresholds.max_shed} ticks, one when that is over.",
    )
    def stream_health_sensor(
        context: dg.SensorEvaluationContext, realtime: RealtimeMarketDataResource,
        alerts: AlertsResource,
    ) -> dg.SensorResult:
        health = realtime.health()
        state = WatchState.from_cursor(context.cursor)
        raised, state = watch(health, state, thresholds, realtime.exchange, datetime.now(tz=UTC))
        if raised:
            asyncio.run(alerts.manager().send_all(raised))
        if not health:
            return dg.SensorResult(
                cursor=state.to_cursor(),
                skip_reason="No stream health in Redis: `helios stream` is not running (its "
                            "health expires 30 s after it stops).")
        metadata: dict[str, dg.RawMetadataValue] = {
            name: _number(health[name]) for name in HEALTH_FIELDS if health.get(name)}
        metadata["status"] = health.get("status", "?")
        return dg.SensorResult(cursor=state.to_cursor(), asset_events=[
            dg.AssetObservation(asset_key=TICKERS, metadata=metadata)])

    return stream_health_sensor


def _number(text: str) -> int | float | str:
    """A health field as a number, so the UI can plot it (text when it is not one)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value
