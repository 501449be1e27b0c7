"""The one place that reads ``HELIOS_*`` environment variables.

Everything configurable is a field of :class:`Settings`; code receives a ``Settings`` (or the
values it needs) instead of reading the environment itself. Defaults run on one laptop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from helios_pipeline.domain.formats import FILE_FORMATS, StorageFormat
from helios_pipeline.domain.symbols import SymbolError, normalize_symbol
from helios_pipeline.domain.ticks import KINDS, TickKind
from helios_pipeline.exchanges.config import DEFAULT_BULK_URLS, ExchangeConfig
from helios_pipeline.exchanges.ratelimit import DEFAULT_SAFETY_FRACTION
from helios_pipeline.security.credentials import CredentialSource
from helios_pipeline.security.inputs import (
    MAX_SECONDS,
    check_day,
    check_exchange_id,
    check_url,
    positive_number,
    shown,
)
from helios_pipeline.security.redact import register_secret
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.validation.rules import ThresholdError, ValidationThresholds

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


# Step executors HELIOS_DAGSTER_EXECUTOR may name (defs/executors.py maps them to Dagster's).
EXECUTORS = ("multiprocess", "k8s", "celery")


class SettingsError(ValueError):
    """A ``HELIOS_*`` variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Platform configuration, read from ``HELIOS_*`` environment variables.

    Attributes:
        data_dir: Data root (``HELIOS_DATA_DIR``); candle partitions and metadata live under it.
        exchange: ccxt exchange id (``HELIOS_EXCHANGE``).
        exchange_url: Base URL that replaces the exchange's own (``HELIOS_EXCHANGE_URL``), e.g.
            the simulated exchange, a testnet or a proxy. ``None`` means the real exchange.
        redis_url: Hot-tier Redis (``HELIOS_REDIS_URL``).
        storage_format: ``parquet`` (default) or ``csv`` (``HELIOS_STORAGE_FORMAT``).
        symbols: Symbols the pipeline ingests (``HELIOS_SYMBOLS``, comma separated).
        start_date: First day of the daily partitions (``HELIOS_START_DATE``, YYYY-MM-DD).
        max_in_flight: Requests in flight per exchange (``HELIOS_MAX_IN_FLIGHT``).
        request_timeout_s: Per-request timeout in seconds (``HELIOS_REQUEST_TIMEOUT_S``).
        alert_webhook_url: Where quality alerts are posted as JSON
            (``HELIOS_ALERT_WEBHOOK_URL``); ``None`` logs them only. Kept out of ``repr``
            because webhook URLs carry tokens.
        freshness_deadline_hour: UTC hour by which yesterday's candles must be stored
            (``HELIOS_FRESHNESS_DEADLINE_HOUR``, 0-23).
        reference_exchange: A second ccxt exchange with the same symbols, for cross-exchange
            divergence (``HELIOS_REFERENCE_EXCHANGE``, e.g. ``okx``); ``None`` turns it off.
        reference_exchange_url: Base-URL override of the reference exchange
            (``HELIOS_REFERENCE_EXCHANGE_URL``).
        hot_retention_minutes: How long Redis keeps ticks (``HELIOS_HOT_RETENTION_MINUTES``):
            the last hour plus a grace period so a closed hour can still be flushed to files.
        ticker_start_date: First day of the hourly ``ticker_snapshots`` partitions
            (``HELIOS_TICKER_START_DATE``, YYYY-MM-DD): when realtime capture began.
        stream_kinds: Tick kinds ``helios stream`` subscribes to (``HELIOS_STREAM_KINDS``, comma
            separated: ``trade``, ``book``, ``ticker``).
        stream_queue_size: Ticks the stream service queues before shedding, book and ticker
            updates first (``HELIOS_STREAM_QUEUE_SIZE``).
        stream_stall_timeout_s: A websocket that sends nothing for this long is reconnected
            (``HELIOS_STREAM_STALL_TIMEOUT_S``).
        stream_shards: Processes ``helios stream`` splits the symbols over
            (``HELIOS_STREAM_SHARDS``); one validates and writes about 90k ticks/s.
        keep_versions: Earlier contents kept per partition when a re-fetch changes it
            (``HELIOS_KEEP_VERSIONS``), readable with ``MarketDataQuery.ohlcv(as_of=...)``.
        stream_alert_lag_ms: ``stream_health_sensor`` alerts when the stream's lag passes this
            (``HELIOS_STREAM_ALERT_LAG_MS``).
        stream_alert_shed: ...and when more ticks than this were shed between two of its checks
            (``HELIOS_STREAM_ALERT_SHED``).
        influx_url: InfluxDB that mirrors the last 30 days of candles and ticks for dashboards
            (``HELIOS_INFLUX_URL``, v1 HTTP API, e.g. ``http://127.0.0.1:8086``); ``None`` (unset
            or empty) turns the mirror off. Kept out of ``repr``: it may carry a password.
        influx_database: Database the mirror writes (``HELIOS_INFLUX_DATABASE``).
        credentials_file: The encrypted exchange-credential store
            (``HELIOS_CREDENTIALS_FILE``; default ``{data_dir}/secrets/credentials.json``).
        master_key: Fernet key of that store (``HELIOS_MASTER_KEY``); kept out of ``repr``.
        master_key_file: A file holding the key, readable only by its owner
            (``HELIOS_MASTER_KEY_FILE``); used when ``master_key`` is not set.
        bulk_url: The exchange's public kline archive backfills take closed months and days
            from (``HELIOS_BULK_URL``; see :meth:`bulk_archive_url`). ``None`` (unset) means the
            exchange's own archive (``https://data.binance.vision`` for Binance) unless
            ``HELIOS_EXCHANGE_URL`` points elsewhere; an empty value turns the bulk path off.
        archive_url: Where the cold tier's monthly files live (``HELIOS_ARCHIVE_URL``):
            ``s3://bucket/prefix`` (an S3-compatible endpoint in the query:
            ``?endpoint_override=host:port&scheme=http``) or a folder; ``None`` is
            ``{data_dir}/archive``.
        warm_days: Days of daily files kept after their month is archived
            (``HELIOS_WARM_DAYS``); older ones are removed once the archive is verified.
        dagster_executor: How runs execute their steps (``HELIOS_DAGSTER_EXECUTOR``):
            ``multiprocess`` (default: Dagster's own, one process per step), ``k8s`` (one
            Kubernetes Job per step, dagster-k8s) or ``celery`` (Celery workers, dagster-celery).
            See docs/deploy.md.
        batch_weight_share: Share of the exchange's per-minute request weight (as the exchange
            counts it for this IP, every process included) up to which batch work (backfills,
            re-fetches, Dagster runs) sends requests (``HELIOS_BATCH_WEIGHT_SHARE``, 0 < share
            <= 0.8); above it batch requests wait for the next minute, so the live stream and
            the trading bot keep the rest of the budget.
    """

    data_dir: Path = Path("local/data")
    exchange: str = "binance"
    exchange_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    storage_format: StorageFormat = "parquet"
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    start_date: str = "2017-08-17"
    max_in_flight: int = 50
    request_timeout_s: float = 10.0
    validation: ValidationThresholds = field(default_factory=ValidationThresholds)
    alert_webhook_url: str | None = field(default=None, repr=False)
    freshness_deadline_hour: int = 2
    reference_exchange: str | None = None
    reference_exchange_url: str | None = None
    hot_retention_minutes: int = 90
    ticker_start_date: str = "2026-11-01"
    stream_kinds: tuple[TickKind, ...] = KINDS
    stream_queue_size: int = 50_000
    stream_stall_timeout_s: float = 10.0
    stream_shards: int = 1
    keep_versions: int = 5
    stream_alert_lag_ms: int = 5_000
    stream_alert_shed: int = 0
    influx_url: str | None = field(default=None, repr=False)
    influx_database: str = "helios"
    credentials_file: Path | None = None
    master_key: str | None = field(default=None, repr=False)
    master_key_file: Path | None = None
    bulk_url: str | None = None
    archive_url: str | None = field(default=None, repr=False)  # may carry credentials
    warm_days: int = 30
    dagster_executor: str = "multiprocess"
    batch_weight_share: float = 0.5

    def exchange_config(self, *, batch: bool = False) -> ExchangeConfig:
        """The primary exchange's connection settings.

        ``batch=True`` limits requests to ``batch_weight_share`` of the weight budget (what
        Dagster runs and backfills use, so that the live stream keeps the rest).
        """
        return ExchangeConfig(self.exchange, self.exchange_url, self.max_in_flight,
                              self.request_timeout_s, credentials=self.credential_source(),
                              bulk_url=self.bulk_archive_url(),
                              weight_share=self.batch_weight_share if batch else None)

    def bulk_archive_url(self) -> str | None:
        """Where backfills download archive files from, or ``None`` for REST only.

        An explicit ``HELIOS_BULK_URL`` wins (empty: off). Unset, it is the exchange's public
        archive, but only against the real exchange: with ``HELIOS_EXCHANGE_URL`` set (the
        simulator, a testnet, a proxy) the archive would not hold the same candles.
        """
        if self.bulk_url is not None:
            return self.bulk_url.strip() or None
        if self.exchange_url:
            return None
        return DEFAULT_BULK_URLS.get(self.exchange)

    def reference_exchange_config(self, *, batch: bool = False) -> ExchangeConfig | None:
        """The reference venue's connection settings, or ``None`` when none is configured.

        Its storage ids are qualified by its exchange id (``okx.BTCUSDT``). ``batch`` as in
        :meth:`exchange_config`.
        """
        if self.reference_exchange is None:
            return None
        return ExchangeConfig(self.reference_exchange, self.reference_exchange_url,
                              self.max_in_flight, self.request_timeout_s,
                              qualifier=self.reference_exchange,
                              credentials=self.credential_source(),
                              weight_share=self.batch_weight_share if batch else None)

    def credential_source(self) -> CredentialSource:
        """The encrypted credential store, its master key and the audit trail of its use."""
        store = self.credentials_file or self.data_dir / "secrets" / "credentials.json"
        return CredentialSource(store, self.master_key, self.master_key_file,
                                metadata_path(self.data_dir))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (or ``environ``), falling back to defaults.

        Raises:
            SettingsError: A variable is set to a value that cannot be used; the message names it.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"HELIOS_{f.name.upper()}")
            if raw is not None and f.name == "bulk_url" and not raw.strip():
                values[f.name] = ""  # empty is meaningful: off
                continue
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, raw.strip())
        settings = cls(**values)  # type: ignore[arg-type]
        settings.register_secrets()
        return settings

    def register_secrets(self) -> None:
        """Have every log line and printout mask every credential the settings carry."""
        register_secret(urlsplit(self.redis_url).password)
        register_secret(self.alert_webhook_url)
        register_secret(self.master_key)
        for url in (self.influx_url, self.archive_url):
            if url and "://" in url:
                parts = urlsplit(url)
                register_secret(parts.password)
                if parts.password:
                    register_secret(parts.username)


def _parse(name: str, raw: str) -> object:
    var = f"HELIOS_{name.upper()}"
    special = _PARSERS.get(name)
    if special is not None:
        return special(var, raw)
    if name in ("data_dir", "credentials_file", "master_key_file"):
        return Path(raw)
    if name == "storage_format":
        if raw not in FILE_FORMATS:
            raise SettingsError(f"{var}={raw!r}: expected 'parquet' or 'csv'.")
        return raw
    if name in ("max_in_flight", "request_timeout_s", "stream_queue_size",
                "stream_stall_timeout_s", "stream_shards"):
        whole = name in ("max_in_flight", "stream_queue_size", "stream_shards")
        maximum = None if whole else MAX_SECONDS
        return _checked(var, raw, lambda r: positive_number(r, whole=whole, maximum=maximum))
    return raw


def _checked(var: str, raw: str, check: Callable[[str], object]) -> object:
    """``check(raw)``, its ``ValueError`` turned into one line naming ``var``."""
    try:
        return check(raw)
    except ValueError as exc:
        raise SettingsError(f"{var}={shown(raw)!r}: {exc}") from None


def _parse_executor(var: str, raw: str) -> str:
    if raw not in EXECUTORS:
        raise SettingsError(f"{var}={raw!r}: expected one of {', '.join(EXECUTORS)}.")
    return raw


def _parse_exchange(var: str, raw: str) -> str:
    return str(_checked(var, raw, check_exchange_id))


def _parse_day(var: str, raw: str) -> str:
    return str(_checked(var, raw, check_day))


def _parse_http_url(var: str, raw: str) -> str:
    return str(_checked(var, raw, lambda r: check_url(r, ("http", "https"))))


def _parse_redis_url(var: str, raw: str) -> str:
    return str(_checked(var, raw, lambda r: check_url(r, ("redis", "rediss"))))


def _parse_symbols(var: str, raw: str) -> tuple[str, ...]:
    symbols = tuple(s.strip() for s in raw.split(",") if s.strip())
    if not symbols:
        raise SettingsError(f"{var} is empty: give symbols like 'BTC/USDT,ETH/USDT'.")
    for symbol in symbols:
        try:
            normalize_symbol(symbol)
        except SymbolError as exc:
            raise SettingsError(f"{var}={raw!r}: {exc}") from None
    return symbols


def _parse_validation(var: str, raw: str) -> ValidationThresholds:
    try:
        return ValidationThresholds.from_spec(raw)
    except ThresholdError as exc:
        raise SettingsError(f"{var}={raw!r}: {exc}") from None


def _parse_kinds(var: str, raw: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise SettingsError(f"{var}={raw!r}: expected some of {', '.join(KINDS)}, comma "
                            "separated.")
    return kinds


def _parse_hour(var: str, raw: str) -> int:
    if not (raw.isdigit() and 0 <= int(raw) <= 23):
        raise SettingsError(f"{var}={raw!r}: expected an hour of the day, 0 to 23.")
    return int(raw)


def _parse_retention(var: str, raw: str) -> int:
    if not (raw.isdigit() and int(raw) >= 60):
        raise SettingsError(f"{var}={raw!r}: expected whole minutes, at least 60 (an hour).")
    return int(raw)


def _parse_share(var: str, raw: str) -> float:
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not 0 < share <= DEFAULT_SAFETY_FRACTION:
        raise SettingsError(f"{var}={raw!r}: expected a share of the request-weight budget "
                            f"above 0 and at most {DEFAULT_SAFETY_FRACTION} (e.g. 0.5).")
    return share


def _parse_count(var: str, raw: str) -> int:
    if not raw.isdigit():
        raise SettingsError(f"{var}={raw!r}: expected a whole number, 0 or more.")
    return int(raw)


# Variables whose values need more than the generic parsing above.
_PARSERS: dict[str, Callable[[str, str], object]] = {
    "validation": _parse_validation,
    "freshness_deadline_hour": _parse_hour,
    "hot_retention_minutes": _parse_retention,
    "stream_kinds": _parse_kinds,
    "keep_versions": _parse_count,
    "stream_alert_lag_ms": _parse_count,
    "stream_alert_shed": _parse_count,
    "influx_url": _parse_http_url,
    "symbols": _parse_symbols,
    "exchange": _parse_exchange,
    "reference_exchange": _parse_exchange,
    "start_date": _parse_day,
    "ticker_start_date": _parse_day,
    "exchange_url": _parse_http_url,
    "reference_exchange_url": _parse_http_url,
    "alert_webhook_url": _parse_http_url,
    "bulk_url": _parse_http_url,
    "redis_url": _parse_redis_url,
    "warm_days": _parse_count,
    "dagster_executor": _parse_executor,
    "batch_weight_share": _parse_share,
}
