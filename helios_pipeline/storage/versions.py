"""Earlier contents of partition files, kept when a re-materialisation changes them.

A partition file always holds its newest version; the catalog (``storage.metadata``) records
every version's content hash and when it was written. When a write is about to replace a file
with different bytes, the old file is hard-linked (no copy) into::

    {data_dir}/versions/{path of the partition under data_dir, without suffix}/{hash}.{ext}

e.g. ``versions/market_data/BTCUSDT/2024/01/ohlcv_1m_20240131/3f2a....parquet``, so any earlier
version the catalog names can be read back by its hash (``MarketDataQuery.ohlcv(as_of=...)``,
``helios history``). Only the ``keep`` most recent earlier versions of a partition are kept; a
catalog version whose file was pruned reads as :class:`VersionNotKeptError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from helios_pipeline.storage.atomic import fsync_dir

VERSIONS = "versions"
DEFAULT_KEEP = 5


class VersionNotKeptError(FileNotFoundError):
    """The catalog knows a version whose content is no longer kept (pruned or never kept)."""


class VersionStore:
    """Earlier versions of the partition files under one data root.

    Args:
        data_dir: Data root; partition files must live under it.
        keep: Earlier versions kept per partition (0 keeps none).
    """

    def __init__(self, data_dir: Path, keep: int = DEFAULT_KEEP) -> None:
        if keep < 0:
            raise ValueError(f"keep={keep}: the number of earlier versions to keep must be >= 0.")
        self.data_dir = data_dir
        self.keep = keep

    def folder(self, partition: Path) -> Path:
        """Where the earlier versions of ``partition`` are kept."""
        try:
            relative = partition.relative_to(self.data_dir)
        except ValueError:
            raise ValueError(f"{partition} is not under the data root {self.data_dir}.") from None
        return self.data_dir / VERSIONS / relative.with_suffix("")

    def path(self, partition: Path, content_hash: str) -> Path:
        """The kept file of one earlier version (it may not exist)."""
        return self.folder(partition) / f"{content_hash}{partition.suffix}"

    def keep_current(self, partition: Path) -> None:
        """Keep the file now at ``partition`` before it is replaced, then prune old versions.

        Does nothing when there is no file, or when keeping is off.
        """
        if self.keep == 0 or not partition.is_file():
            return
        digest = hashlib.sha256(partition.read_bytes()).hexdigest()
        target = self.path(partition, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # the same content was kept before
            os.link(partition, target)
            fsync_dir(target.parent)
        self._prune(target.parent)

    def load_bytes(self, partition: Path, content_hash: str) -> bytes:
        """The bytes of an earlier version.

        Raises:
            VersionNotKeptError: The version is not kept (pruned, or written before keeping).
        """
        path = self.path(partition, content_hash)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise VersionNotKeptError(
                f"Version {content_hash[:12]} of {partition.name} is not kept (only the last "
                f"{self.keep} earlier versions are; raise HELIOS_KEEP_VERSIONS to keep more)."
            ) from None

    def kept(self, partition: Path) -> list[Path]:
        """Kept earlier versions of ``partition``, oldest first."""
        folder = self.folder(partition)
        if not folder.is_dir():
            return []
        return sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))

    def _prune(self, folder: Path) -> None:
        # A hard link shares the replaced file's mtime: the order of writing is the order of age.
        files = sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink()
