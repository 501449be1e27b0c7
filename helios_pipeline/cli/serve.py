"""``helios serve``: the read API over HTTP (uvicorn), with scoped bearer tokens."""

from __future__ import annotations

import argparse

import uvicorn

from helios_pipeline.api.access import AuditedAccess, JsonlAccessLog, access_log_path
from helios_pipeline.api.app import ApiConfig, create_app
from helios_pipeline.api.tokens import TokenStore, tokens_path
from helios_pipeline.cli.common import CliError, console
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.settings import Settings
from helios_pipeline.storage.paths import metadata_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios serve``."""
    serve = sub.add_parser("serve", help="serve the read API over HTTP (see docs/api.md)",
                           description="Serve prices, candles and quality status over HTTP to "
                                       "holders of a token (`helios tokens create`).")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080)")
    serve.add_argument("--query-timeout", type=_seconds, default=ApiConfig.query_timeout_s,
                       help="seconds a query may run before the answer is 504 (default 10)")
    serve.set_defaults(handler=_serve)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; use 1-65535")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and 3600")
    return value


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    tokens = TokenStore(tokens_path(settings.data_dir))
    if not any(t.state_now() == "active" for t in tokens.list()):
        console.print("[yellow]No active token yet: every data request will be refused (401). "
                      "Create one with `helios tokens create NAME`.[/]")
    query = MarketDataQuery.from_settings(settings)
    recorder = AuditedAccess(AuditLog(metadata_path(settings.data_dir)),
                             JsonlAccessLog(access_log_path(settings.data_dir)))
    app = create_app(query, tokens, recorder, ApiConfig(query_timeout_s=args.query_timeout))
    console.print(f"Read API on http://{args.host}:{args.port} (description: /openapi.json); "
                  f"access log {access_log_path(settings.data_dir)}, every request also in "
                  "`helios audit`")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except OSError as exc:
        raise CliError(f"Cannot serve on {args.host}:{args.port}: {exc}") from None
    finally:
        query.close()
        tokens.close()
    return 0
