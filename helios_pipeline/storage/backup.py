"""Consistent backups of a data root while the platform runs, and verified restores.

``backup(data_dir, target)`` first snapshots every SQLite database under the data root (the
catalog ``metadata.sqlite`` and any other ``*.sqlite``) with SQLite's online backup API, which
copies a consistent state while writers carry on; then it copies every other file: candle
partitions and their kept versions, the current files, quarantine, quality reports, the realtime
write-ahead logs and system logs. Partition files are only ever replaced by an atomic rename, so
each copied file is whole. The catalog snapshot is the consistency point: a partition written
while the backup runs may be in the copy without its catalog row (the catalog decides what is
current, so it stays invisible), never the other way round. A write-ahead log being appended to
may end in a half-written line, which its reader already treats as a crash tail.

The backup ends with ``manifest.json`` (written last: a backup without it is incomplete): every
file's path, size and SHA-256. ``restore(source, data_dir)`` checks every file against the
manifest before it copies anything, and only into an empty data root.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MANIFEST = "manifest.json"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
# Files SQLite keeps beside a database while it is open; the online backup replaces them.
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot be done safely; the message says why and what to do."""


@dataclass(frozen=True)
class BackupSummary:
    """What a backup or restore covered."""

    files: int
    bytes: int
    databases: int


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_sidecar(path: Path) -> bool:
    return any(path.name.endswith(suffix + side) for suffix in SQLITE_SUFFIXES
               for side in SQLITE_SIDECARS)


def _ensure_empty(directory: Path, what: str) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{what} {directory} is not empty; give an empty or new directory.")


def backup(data_dir: Path, target: Path) -> BackupSummary:
    """Snapshot ``data_dir`` into the empty or new directory ``target``.

    Raises:
        BackupError: ``data_dir`` holds no data, or ``target`` is not empty or inside it.
    """
    data_dir, target = data_dir.resolve(), target.resolve()
    if not data_dir.is_dir():
        raise BackupError(f"Data root {data_dir} does not exist: nothing to back up.")
    if target == data_dir or data_dir in target.parents:
        raise BackupError(f"Backup directory {target} is inside the data root {data_dir}; "
                          "choose a directory outside it.")
    _ensure_empty(target, "Backup directory")
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in data_dir.rglob("*") if p.is_file() and not _is_sidecar(p))
    databases = [p for p in sources if p.suffix in SQLITE_SUFFIXES]
    for db in databases:  # first: the consistency point
        _snapshot_sqlite(db, target / db.relative_to(data_dir))
    for path in sources:
        if path.suffix not in SQLITE_SUFFIXES:
            destination = target / path.relative_to(data_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, destination)
            except FileNotFoundError:
                continue  # replaced or pruned since the listing: the catalog no longer needs it
    files = sorted(p for p in target.rglob("*") if p.is_file())
    entries: list[dict[str, object]] = [
        {"path": p.relative_to(target).as_posix(), "size": p.stat().st_size,
         "sha256": file_sha256(p)} for p in files]
    manifest = {"created_at": datetime.now(tz=UTC).isoformat(), "source": str(data_dir),
                "files": entries}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return BackupSummary(len(files), sum(p.stat().st_size for p in files), len(databases))


def _snapshot_sqlite(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


def verify(source: Path) -> list[dict[str, object]]:
    """The manifest's entries, after checking every file's size and hash against it.

    Raises:
        BackupError: No manifest, or a file missing, changed or not listed.
    """
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{source} has no {MANIFEST}: not a Helios backup, or an incomplete "
                          "one (the manifest is written last).")
    try:
        entries: list[dict[str, object]] = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{manifest_path} is unreadable ({exc}); the backup is damaged.") \
            from None
    listed = {str(e["path"]) for e in entries}
    present = {p.relative_to(source).as_posix() for p in source.rglob("*")
               if p.is_file() and p.name != MANIFEST}
    if extra := sorted(present - listed):
        raise BackupError(f"{len(extra)} file(s) in {source} are not in its manifest, e.g. "
                          f"{extra[0]}; the backup was changed after it was taken.")
    for entry in entries:
        path = source / str(entry["path"])
        if not path.is_file():
            raise BackupError(f"{entry['path']} is listed in the manifest but missing from "
                              f"{source}; the backup is incomplete.")
        if file_sha256(path) != entry["sha256"]:
            raise BackupError(f"{entry['path']} in {source} does not match its SHA-256 in the "
                              "manifest: the file was changed or damaged. Restore refused.")
    return entries


def restore(source: Path, data_dir: Path) -> BackupSummary:
    """Restore the backup in ``source`` into the empty or new ``data_dir``, verified first.

    Raises:
        BackupError: The backup fails verification, or ``data_dir`` is not empty.
    """
    _ensure_empty(data_dir, "Data root")
    entries = verify(source)
    for entry in entries:
        destination = data_dir / str(entry["path"])
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / str(entry["path"]), destination)
    databases = sum(1 for e in entries if Path(str(e["path"])).suffix in SQLITE_SUFFIXES)
    return BackupSummary(len(entries), sum(int(str(e["size"])) for e in entries), databases)
