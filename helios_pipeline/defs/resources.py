"""Dagster resources wrapping the exchange client and the stores."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.settings import Settings, StorageFormat
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

    def client(self) -> ExchangeClient:
        """A new client; use it as ``async with resource.client() as client``."""
        return ExchangeClient(
            self.exchange_id,
            base_url=self.base_url,
            max_in_flight=self.max_in_flight,
            timeout_s=self.timeout_s,
            qualifier=self.qualifier,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ExchangeResource:
        """Configure from ``HELIOS_*`` settings."""
        return cls(
            exchange_id=settings.exchange,
            base_url=settings.exchange_url,
            max_in_flight=settings.max_in_flight,
            timeout_s=settings.request_timeout_s,
        )

    @classmethod
    def reference_from_settings(cls, settings: Settings) -> ExchangeResource | None:
        """The reference venue (``HELIOS_REFERENCE_EXCHANGE``), or None when not configured."""
        if settings.reference_exchange is None:
            return None
        return cls(
            exchange_id=settings.reference_exchange,
            base_url=settings.reference_exchange_url,
            max_in_flight=settings.max_in_flight,
            timeout_s=settings.request_timeout_s,
            qualifier=settings.reference_exchange,
        )


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
