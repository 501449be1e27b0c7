"""``helios ui``: the Dagster UI (``dagster dev``) on the project's instance."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from helios_pipeline.cli.common import console, project_root


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios ui``."""
    ui = sub.add_parser("ui", help="open the Dagster UI (dagster dev)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)


def _ui(args: argparse.Namespace) -> int:
    root = project_root()
    env = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(root))}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(root / "workspace.yaml"),
               "-p", str(args.port)]
    console.print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)")
    return subprocess.call(command, env=env, cwd=root)  # noqa: S603
