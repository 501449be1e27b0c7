"""The ``helios`` command: demo, simulated exchange, backfills, the realtime stream and the UI."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from helios_pipeline.cli import backfill, backup, demo, history, serve, sim, stream, tokens, ui
from helios_pipeline.cli.common import CliError, console
from helios_pipeline.domain.symbols import SymbolError
from helios_pipeline.settings import Settings, SettingsError
from helios_pipeline.storage.system_logs import install_system_logs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``helios`` command."""
    args = _parser().parse_args(argv)
    # Dagster flags backfill policies as beta on every import; not news for a CLI user.
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    try:
        if getattr(args, "system_logs", True):  # `helios restore` needs an empty data root
            install_system_logs(Settings.from_env().data_dir)
        return int(args.handler(args))
    except (CliError, SettingsError, SymbolError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helios", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in (demo, sim, backfill, history, backup, ui, stream, tokens, serve):
        command.add_parser(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
