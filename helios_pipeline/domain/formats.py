"""File formats of the warm candle and ticker partitions."""

from __future__ import annotations

from typing import Literal

# Parquet keeps exact decimal128 columns; CSV keeps the exchange's decimal strings.
StorageFormat = Literal["parquet", "csv"]
FILE_FORMATS: tuple[StorageFormat, ...] = ("parquet", "csv")
