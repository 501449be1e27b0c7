"""``helios audit``: read the hash-chained audit trail, or verify that it is intact."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from rich.table import Table

from helios_pipeline.cli.common import CliError, console
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.settings import Settings
from helios_pipeline.storage.paths import metadata_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios audit [verify] [--since] [--kind]``."""
    audit = sub.add_parser("audit", help="the audit trail: who fetched, deleted, used what")
    audit.add_argument("action", nargs="?", choices=["verify"],
                       help="verify: recompute the hash chain and report any broken link")
    audit.add_argument("--since", help="only entries at or after this UTC time "
                                       "(YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
    audit.add_argument("--kind", help="only this kind, e.g. backfill, credential_use")
    audit.set_defaults(handler=_audit)


def parse_since(text: str) -> datetime:
    """``--since`` as an aware UTC datetime.

    Raises:
        CliError: Not an ISO date or date-time.
    """
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--since {text!r}: expected a UTC date or time like 2026-12-01 or "
                       "2026-12-01T09:30.") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _audit(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since is not None else None
    log = AuditLog(metadata_path(Settings.from_env().data_dir))
    if args.action == "verify":
        result = log.verify()
        for problem in result.problems:
            console.print(f"[red]broken:[/] {problem}")
        state = "intact" if result.ok else "BROKEN"
        console.print(f"Audit trail {state}: {result.rows} rows, head {result.head}")
        return 0 if result.ok else 1
    entries = log.entries(since=since, kind=args.kind)
    if not entries:
        console.print(f"No audit entries match in {log.path}.")
        return 0
    table = Table(title=f"audit trail ({log.path})")
    for column in ("seq", "at", "kind", "subject", "actor", "detail"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(str(entry.seq), entry.at, entry.kind, entry.subject, entry.actor,
                      json.dumps(entry.detail, sort_keys=True))
    console.print(table)
    return 0
