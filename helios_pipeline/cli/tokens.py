"""``helios tokens create|revoke|list``: bearer tokens for the read API (``helios serve``)."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time

from rich.table import Table

from helios_pipeline.api.tokens import ANY, Scope, TokenError, TokenStore, tokens_path
from helios_pipeline.cli.common import CliError, console
from helios_pipeline.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios tokens``."""
    tokens = sub.add_parser("tokens", help="create, revoke and list read-API tokens",
                            description="Bearer tokens for `helios serve`, with scopes and a "
                                        "rate limit. The secret is printed once, at creation.")
    actions = tokens.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="issue a token (its secret is shown once)")
    create.add_argument("name", help="who it is for, e.g. dashboard-1")
    create.add_argument("--symbols", default=ANY,
                        help="comma-separated symbols, e.g. BTC/USDT,ETH/USDT (default * = all)")
    create.add_argument("--kinds", default="price,ohlcv",
                        help="price, ohlcv, indicators, quality (default price,ohlcv)")
    create.add_argument("--tiers", default=ANY, help="hot, warm, archive (default * = all)")
    create.add_argument("--rate", type=int, default=60, help="requests per minute (default 60)")
    create.add_argument("--expires", type=_expiry, default=None,
                        help="UTC day or ISO time it stops working, e.g. 2027-01-01")
    create.set_defaults(handler=_create)
    revoke = actions.add_parser("revoke", help="revoke a token for good")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_revoke)
    actions.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        handler=_list)


def _expiry(text: str) -> datetime:
    try:
        moment = (datetime.combine(date.fromisoformat(text), time(), UTC) if len(text) == 10
                  else datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day or time; use YYYY-MM-DD or an ISO time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _store() -> TokenStore:
    return TokenStore(tokens_path(Settings.from_env().data_dir))


def _create(args: argparse.Namespace) -> int:
    try:
        scope = Scope.parse(args.symbols, args.kinds, args.tiers)
        secret = _store().create(args.name, scope, args.rate, args.expires)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    console.print(f"Token {args.name!r} created; copy it now, it is not shown again:")
    print(secret)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        _store().revoke(args.name)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    console.print(f"Token {args.name!r} revoked.")
    return 0


def _list(args: argparse.Namespace) -> int:
    table = Table(title="read-API tokens")
    for column in ("name", "state", "symbols", "kinds", "tiers", "rate/min", "expires (UTC)"):
        table.add_column(column)
    now = datetime.now(UTC)
    for token in _store().list():
        scope = token.scope.describe()
        expires = "-" if token.expires_at is None else f"{token.expires_at:%Y-%m-%d %H:%M}"
        table.add_row(token.name, token.state(now), scope["symbols"], scope["kinds"],
                      scope["tiers"], str(token.rate_per_min), expires)
    console.print(table)
    return 0
