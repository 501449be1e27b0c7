"""What every ``helios`` command shares: the console, user errors and argument parsing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.security.console import RedactingConsole
from helios_pipeline.security.inputs import MAX_SECONDS, positive_number
from helios_pipeline.security.redact import redact

if TYPE_CHECKING:
    from helios_pipeline.defs.backfill import Instance
    from helios_pipeline.settings import Settings

# Piped output (CI logs, `| tee`) keeps whole lines: fault specs, report paths and file names
# stay copyable instead of wrapping at Rich's default 80 columns. Credentials are masked.
console = RedactingConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def print_error(problem: BaseException | str) -> None:
    """``error: <problem>`` as exactly one line on stderr, credentials masked."""
    text = " ".join(str(problem).splitlines()) or type(problem).__name__
    sys.stderr.write(f"error: {redact(text)}\n")
    sys.stderr.flush()


class HeliosParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <prog>: <message>`` and exit with 2."""
        print_error(f"{self.prog}: {message} (see {self.prog} --help)")
        sys.exit(2)


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number above 0 (``--duration``, ``--status-every``)."""
    try:
        return float(positive_number(text, whole=False, maximum=MAX_SECONDS))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number above 0 (``--top``, ``--days``)."""
    try:
        return int(positive_number(text, whole=True))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def project_root() -> Path:
    """The folder with ``dagster.yaml`` and ``workspace.yaml``: the current one."""
    root = Path.cwd()
    if not (root / "dagster.yaml").exists():
        raise CliError(
            f"No dagster.yaml in {root}: run helios from the project root (the folder with "
            "dagster.yaml and workspace.yaml)."
        )
    return root


def dagster_instance() -> Instance:
    """The project's persistent Dagster instance (``DAGSTER_HOME``, default the project root)."""
    from helios_pipeline.defs.backfill import project_instance

    return project_instance(project_root())


def parse_symbols(text: str) -> list[str]:
    """Comma-separated symbols in either form, as unified symbols."""
    symbols = [normalize_symbol(s) for s in text.split(",") if s.strip()]
    if not symbols:
        raise CliError("No symbols given: use e.g. --symbols BTC/USDT,ETH/USDT")
    return symbols


def audit_settings(settings: Settings, command: str) -> None:
    """Record the effective ``HELIOS_*`` configuration in the audit trail when it changed.

    Secrets are left out (the master key, the webhook URL) or masked (the Redis password).
    """
    from dataclasses import asdict

    from helios_pipeline.security.audit import AuditLog
    from helios_pipeline.storage.paths import metadata_path

    config = {k: v for k, v in asdict(settings).items()
              if k not in ("master_key", "alert_webhook_url")}
    config["alert_webhook_url"] = "set" if settings.alert_webhook_url else None
    AuditLog(metadata_path(settings.data_dir)).record_config(command, config)
