"""Dagster resources: the exchanges, the stores under the data root and where alerts go.

Every asset, check, sensor and schedule gets these injected; none builds its own store or client
from configuration it captured.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg

from helios_pipeline.domain.formats import StorageFormat
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.config import ExchangeConfig
from helios_pipeline.quality.alerts import AlertManager
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.security.credentials import CredentialSource
from helios_pipeline.security.redact import redact
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.quarantine import QuarantineStore

ALERTS_LOG = logging.getLogger("helios.quality")


class CredentialsConfig(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where an exchange resource's credentials are: the encrypted store and its key.

    The key reaches Dagster as ``dg.EnvVar("HELIOS_MASTER_KEY")`` (or as a key-file path),
    never as a literal; the store holds the exchange's ``apiKey`` and ``secret``.
    """

    credentials_file: str | None = None
    master_key: str | None = None
    master_key_file: str | None = None
    audit_db: str | None = None

    def credential_source(self) -> CredentialSource | None:
        """The store to read credentials from, or ``None``."""
        if self.credentials_file is None:
            return None
        return CredentialSource(
            Path(self.credentials_file), self.master_key,
            Path(self.master_key_file) if self.master_key_file else None,
            Path(self.audit_db) if self.audit_db else None)

    @staticmethod
    def fields_of(source: CredentialSource | None) -> dict[str, str | None]:
        """Config values for ``source`` (the key through ``dg.EnvVar``)."""
        if source is None:
            return {}
        return {"credentials_file": str(source.store),
                "master_key": secret_config("HELIOS_MASTER_KEY", source.master_key),
                "master_key_file": str(source.key_file) if source.key_file else None,
                "audit_db": str(source.audit_db) if source.audit_db else None}


class ExchangeResource(CredentialsConfig):
    """The exchange an asset ingests from (ccxt id and optional base-URL override).

    ``qualifier`` exchange-qualifies the storage folders (``okx.BTCUSDT``) of a second venue
    that shares the data root with the primary one. ``bulk_url`` is the public kline archive
    closed periods are taken from (``None``: REST only). ``weight_share`` is the share of the
    exchange's per-minute request weight runs may take the IP's window to
    (``HELIOS_BATCH_WEIGHT_SHARE``): batch work yields to the live stream above it.
    """

    exchange_id: str = "binance"
    base_url: str | None = None
    max_in_flight: int = 50
    timeout_s: float = 10.0
    qualifier: str | None = None
    bulk_url: str | None = None
    weight_share: float | None = None

    def config(self) -> ExchangeConfig:
        """The exchange's connection settings."""
        return ExchangeConfig(self.exchange_id, self.base_url, self.max_in_flight,
                              self.timeout_s, self.qualifier, self.credential_source(),
                              bulk_url=self.bulk_url, weight_share=self.weight_share)

    def client(self) -> ExchangeClient:
        """A new client; use it as ``async with resource.client() as client``.

        Every client of one exchange in this process shares its circuit breaker, rate limiter
        and in-flight cap (``exchanges.shared``): one run's open circuit holds for the next.
        """
        return ExchangeClient.from_config(self.config(), shared=True)

    @classmethod
    def from_config(cls, config: ExchangeConfig) -> ExchangeResource:
        """Configure from an exchange's settings (``Settings.exchange_config()``)."""
        return cls(exchange_id=config.exchange_id, base_url=config.base_url,
                   max_in_flight=config.max_in_flight, timeout_s=config.timeout_s,
                   qualifier=config.qualifier, bulk_url=config.bulk_url,
                   weight_share=config.weight_share, **cls.fields_of(config.credentials))


class ReferenceExchangeResource(CredentialsConfig):
    """The second venue cross-exchange checks compare with (``HELIOS_REFERENCE_EXCHANGE``).

    ``exchange_id`` is ``None`` when no reference venue is configured: the reference assets
    then store nothing and say so, and the quality report compares nothing.
    """

    exchange_id: str | None = None
    base_url: str | None = None
    max_in_flight: int = 50
    timeout_s: float = 10.0
    weight_share: float | None = None

    def venue(self) -> ExchangeResource | None:
        """The reference venue as an exchange (its folders qualified by its id), or ``None``."""
        if self.exchange_id is None:
            return None
        return ExchangeResource(exchange_id=self.exchange_id, base_url=self.base_url,
                                max_in_flight=self.max_in_flight, timeout_s=self.timeout_s,
                                qualifier=self.exchange_id, weight_share=self.weight_share,
                                credentials_file=self.credentials_file,
                                master_key=self.master_key,
                                master_key_file=self.master_key_file, audit_db=self.audit_db)

    @classmethod
    def from_config(cls, config: ExchangeConfig | None) -> ReferenceExchangeResource:
        """Configure from ``Settings.reference_exchange_config()`` (``None``: no venue)."""
        if config is None:
            return cls()
        return cls(exchange_id=config.exchange_id, base_url=config.base_url,
                   max_in_flight=config.max_in_flight, timeout_s=config.timeout_s,
                   weight_share=config.weight_share, **cls.fields_of(config.credentials))


class StorageResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Warm candle files, quarantine and the SQLite metadata catalog under one data root."""

    data_dir: str = "local/data"
    storage_format: str = "parquet"
    keep_versions: int = 5

    @property
    def root(self) -> Path:
        """The data root (``HELIOS_DATA_DIR``)."""
        return Path(self.data_dir)

    def candles(self) -> CandleStore:
        """Candle partition files."""
        fmt: StorageFormat = "csv" if self.storage_format == "csv" else "parquet"
        return CandleStore(self.root, fmt=fmt, keep_versions=self.keep_versions)

    def metadata(self) -> MetadataStore:
        """Markets, configs and the partition catalog."""
        return MetadataStore(metadata_path(self.root))

    def quarantine(self) -> QuarantineStore:
        """Rejected rows and why."""
        return QuarantineStore(self.root)

    def audit(self) -> AuditLog:
        """The hash-chained audit trail (in the metadata database)."""
        return AuditLog(metadata_path(self.root))


class MarketDataQueryResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """``MarketDataQuery`` for assets: candles, prices and profiles from every tier."""

    data_dir: str = "local/data"
    exchange: str = "binance"
    redis_url: str | None = None
    hot_retention_minutes: int = 90
    keep_versions: int = 5
    start_date: str = "2017-08-17"
    archive_url: str | None = None

    def query(self) -> MarketDataQuery:
        """A query over the configured tiers (close it when done)."""
        return MarketDataQuery(Path(self.data_dir), self.exchange, redis_url=self.redis_url,
                               hot_retention_minutes=self.hot_retention_minutes,
                               keep_versions=self.keep_versions, start_date=self.start_date,
                               archive_url=self.archive_url)


class AlertsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where quality alerts go: the log always, a webhook when configured."""

    webhook_url: str | None = None

    def manager(self) -> AlertManager:
        """An alert manager for one run or sensor tick."""
        return AlertManager(self.webhook_url, ALERTS_LOG)


class SecretConfigError(ValueError):
    """A credential-bearing value would end up as literal resource config (visible in the UI)."""


def secret_config(env_var: str, value: str | None) -> str | None:
    """Resource config for a value that may carry a credential (Redis URL, webhook URL).

    Config given as a literal is shown by the Dagster UI and stored with every run; one read
    through ``dg.EnvVar`` shows only the variable's name. So a value that came from ``env_var``
    is passed as ``dg.EnvVar(env_var)``, a value without credentials (``redis://127.0.0.1``)
    as itself, and a credential-bearing value from elsewhere is refused.

    Raises:
        SecretConfigError: ``value`` carries a credential but is not what ``env_var`` holds.
    """
    if value is None:
        return None
    if os.environ.get(env_var) == value:
        return dg.EnvVar(env_var)
    if redact(value) != value:
        raise SecretConfigError(
            f"{redact(value)} carries a credential: set it in {env_var} so Dagster reads it "
            "through dg.EnvVar instead of showing it as resource config."
        )
    return value
