"""``helios backup DIR`` and ``helios restore DIR``: snapshot the data root, and bring it back."""

from __future__ import annotations

import argparse
from pathlib import Path

from helios_pipeline.cli.common import CliError, console
from helios_pipeline.settings import Settings
from helios_pipeline.storage.backup import BackupError, BackupSummary, backup, restore


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios backup`` and ``helios restore``."""
    take = sub.add_parser(
        "backup", help="snapshot the data root (safe while the platform runs)",
        description="Copy the data root (HELIOS_DATA_DIR) into an empty directory: the SQLite "
                    "catalog through SQLite's online backup, then every partition, version, "
                    "quarantine file, report and write-ahead log, with a manifest of SHA-256s.")
    take.add_argument("directory", type=Path, help="empty or new directory for the backup")
    take.set_defaults(handler=_backup)
    back = sub.add_parser(
        "restore", help="restore a backup into an empty data root, verified first",
        description="Check every file of a backup against its manifest, then copy it into the "
                    "data root (HELIOS_DATA_DIR), which must be empty or new.")
    back.add_argument("directory", type=Path, help="a directory written by `helios backup`")
    # No system logs for this command: they would be the first files in the empty data root.
    back.set_defaults(handler=_restore, system_logs=False)


def _report(verb: str, summary: BackupSummary, where: str) -> None:
    console.print(f"{verb} {summary.files} files ({summary.bytes / 1e6:.1f} MB, "
                  f"{summary.databases} SQLite database(s)) {where}")


def _backup(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        summary = backup(settings.data_dir, args.directory)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    _report("backed up", summary, f"from {settings.data_dir} to {args.directory}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        summary = restore(args.directory, settings.data_dir)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    _report("restored", summary, f"from {args.directory} into {settings.data_dir}")
    return 0
