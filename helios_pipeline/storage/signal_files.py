"""Files of computed trading inputs: indicator and regime tables (Parquet), grid suggestions (JSON).

Derived statistics, not exchange data: floats are what they are computed as. Written atomically
(``storage.atomic``); re-writing a day replaces its file. Paths come from ``storage.paths``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helios_pipeline.storage.atomic import write_atomic, write_atomic_with


def store_table(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` (indexed by UTC open time) to ``path`` as Parquet, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    write_atomic_with(path, lambda stream: pq.write_table(table, stream))


def load_table(path: Path) -> pd.DataFrame:
    """A table :func:`store_table` wrote.

    Raises:
        FileNotFoundError: Nothing stored at ``path``: materialise the asset first.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: not stored yet; materialise the partition first.")
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame


def store_json(path: Path, values: dict[str, object]) -> None:
    """Write ``values`` to ``path`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(values, indent=2, default=str).encode())
