"""Partitions of the batch assets: symbol (dynamic, from configuration) x UTC day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg

from helios_pipeline.domain.symbols import from_storage_id, to_storage_id

SYMBOLS_PARTITIONS = "symbols"
SYMBOLS = dg.DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS)
SYMBOL_DIM = "symbol"
DAY_DIM = "day"


def registered_symbols(instance: dg.DagsterInstance) -> list[str]:
    """Storage ids (``BTCUSDT``) in the ``symbols`` dynamic partitions of ``instance``."""
    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))


def register_symbols(instance: dg.DagsterInstance, symbols: Sequence[str]) -> None:
    """Add unified symbols to the ``symbols`` dynamic partitions (known ones are skipped)."""
    known = set(registered_symbols(instance))
    new = [sid for sid in (to_storage_id(s) for s in symbols) if sid not in known]
    if new:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS, new)


def symbol_day_partitions(start_date: str) -> dg.MultiPartitionsDefinition:
    """Symbol x day partitions; days run from ``start_date`` to yesterday (UTC)."""
    days = dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC")
    return dg.MultiPartitionsDefinition({SYMBOL_DIM: SYMBOLS, DAY_DIM: days})


@dataclass(frozen=True)
class SymbolDay:
    """One partition in domain terms."""

    symbol: str
    day: date

    @property
    def key(self) -> dg.MultiPartitionKey:
        """The Dagster partition key (symbol dimension holds the storage id)."""
        return dg.MultiPartitionKey(
            {SYMBOL_DIM: to_storage_id(self.symbol), DAY_DIM: self.day.isoformat()}
        )

    @classmethod
    def from_key(cls, partitions: dg.MultiPartitionsDefinition, key: str) -> SymbolDay:
        """Parse a multi-partition key string such as ``2024-01-01|BTCUSDT``."""
        dims = partitions.get_partition_key_from_str(key).keys_by_dimension
        return cls(symbol=from_storage_id(dims[SYMBOL_DIM]), day=date.fromisoformat(dims[DAY_DIM]))
