"""All-or-nothing file writes: a reader sees the old file or the new one, never a torn one.

The recipe: write to a temp file in the destination folder (same file system, so the rename is
atomic), flush, fsync the file, ``os.replace`` it over the destination, fsync the folder so the
rename itself survives a crash. On any failure the temp file is removed and the old file is left
as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Files are meant to be shared with readers (Dagster, research code); mkstemp would give 0600.
FILE_MODE = 0o644


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, creating missing parent folders.

    Args:
        path: Destination file.
        data: Complete new content.

    Raises:
        OSError: The write, fsync or rename failed; ``path`` is unchanged.
    """
    write_atomic_with(path, lambda stream: stream.write(data))


def write_atomic_with(path: Path, writer: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with whatever ``writer`` writes to the binary stream it is given.

    Useful for writers that want a file object (``pyarrow.parquet.write_table``, ``csv``).

    Args:
        path: Destination file.
        writer: Called once with an open binary stream; its return value is ignored. If it
            raises, the exception propagates and ``path`` is unchanged.

    Raises:
        OSError: The write, fsync or rename failed; ``path`` is unchanged.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as stream:
            writer(stream)
            stream.flush()
            os.fchmod(stream.fileno(), FILE_MODE)
            os.fsync(stream.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
