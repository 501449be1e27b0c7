"""The ``helios`` command: demo, simulated exchange, backfills, the realtime stream and the UI."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from helios_pipeline.cli import (
    audit,
    backfill,
    backup,
    demo,
    history,
    quarantine,
    secrets,
    serve,
    sim,
    stream,
    tokens,
    ui,
)
from helios_pipeline.cli.common import CliError, HeliosParser, print_error
from helios_pipeline.domain.symbols import SymbolError
from helios_pipeline.security.credentials import CredentialError
from helios_pipeline.security.logs import install_redaction
from helios_pipeline.settings import Settings, SettingsError
from helios_pipeline.storage.system_logs import install_system_logs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``helios`` command."""
    install_redaction(streams=True)
    args = _parser().parse_args(argv)
    # Dagster flags backfill policies as beta on every import; not news for a CLI user.
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    try:
        if getattr(args, "system_logs", True):  # `helios restore` needs an empty data root
            install_system_logs(Settings.from_env().data_dir)
        return int(args.handler(args))
    except (CliError, CredentialError, SettingsError, SymbolError, ValueError, OSError) as exc:
        print_error(exc)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> HeliosParser:
    parser = HeliosParser(prog="helios", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in (demo, sim, backfill, history, quarantine, backup, ui, stream, secrets,
                    audit, tokens, serve):
        command.add_parser(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
