"""Dagster resources wrapping the exchange client and the stores."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from helios_pipeline.domain.formats import StorageFormat
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.config import ExchangeConfig
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path


class ExchangeResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The exchange an asset ingests from (ccxt id and optional base-URL override).

    ``qualifier`` exchange-qualifies the storage folders (``okx.BTCUSDT``) of a second venue
    that shares the data root with the primary one.
    """

    exchange_id: str = "binance"
    base_url: str | None = None
    max_in_flight: int = 50
    timeout_s: float = 10.0
    qualifier: str | None = None

    def config(self) -> ExchangeConfig:
        """The exchange's connection settings."""
        return ExchangeConfig(self.exchange_id, self.base_url, self.max_in_flight,
                              self.timeout_s, self.qualifier)

    def client(self) -> ExchangeClient:
        """A new client; use it as ``async with resource.client() as client``."""
        return ExchangeClient.from_config(self.config())

    @classmethod
    def from_config(cls, config: ExchangeConfig) -> ExchangeResource:
        """Configure from an exchange's settings (``Settings.exchange_config()``)."""
        return cls(exchange_id=config.exchange_id, base_url=config.base_url,
                   max_in_flight=config.max_in_flight, timeout_s=config.timeout_s,
                   qualifier=config.qualifier)


class StorageResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Warm candle files and the SQLite metadata catalog under one data root."""

    data_dir: str = "local/data"
    storage_format: str = "parquet"

    def candles(self) -> CandleStore:
        """Candle partition files."""
        fmt: StorageFormat = "csv" if self.storage_format == "csv" else "parquet"
        return CandleStore(Path(self.data_dir), fmt=fmt)

    def metadata(self) -> MetadataStore:
        """Markets, configs and the partition catalog."""
        return MetadataStore(metadata_path(Path(self.data_dir)))

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageResource:
        """Configure from ``HELIOS_*`` settings."""
        return cls(data_dir=str(settings.data_dir), storage_format=settings.storage_format)
