"""What every ``helios`` command shares: the console, user errors and argument parsing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.security.console import RedactingConsole

if TYPE_CHECKING:
    from helios_pipeline.defs.backfill import Instance

# Piped output (CI logs, `| tee`) keeps whole lines: fault specs, report paths and file names
# stay copyable instead of wrapping at Rich's default 80 columns. Credentials are masked.
console = RedactingConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


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
