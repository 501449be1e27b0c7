"""``helios secrets``: the encrypted exchange-credential store (names in, values never out)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from helios_pipeline.cli.common import CliError, console
from helios_pipeline.security.credentials import (
    CredentialStore,
    check_name,
    key_id,
    write_key_file,
)
from helios_pipeline.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios secrets keygen|set|list|delete|rotate``."""
    secrets = sub.add_parser("secrets", help="exchange credentials in an encrypted store")
    actions = secrets.add_subparsers(required=True, metavar="ACTION")
    keygen = actions.add_parser("keygen", help="create a master key file (mode 0600)")
    keygen.add_argument("key_file", type=Path, metavar="KEYFILE")
    keygen.set_defaults(handler=_keygen)
    put = actions.add_parser("set", help="store a value read from standard input")
    put.add_argument("name", help="exchange.field, e.g. binance.apiKey or binance.secret")
    put.set_defaults(handler=_set)
    listing = actions.add_parser("list", help="the stored names (never the values)")
    listing.set_defaults(handler=_list)
    delete = actions.add_parser("delete", help="remove a stored value")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)
    rotate = actions.add_parser("rotate", help="re-encrypt the store under a new master key")
    rotate.add_argument("--new-key-file", type=Path, required=True, metavar="KEYFILE",
                        help="where to write the new key (must not exist yet)")
    rotate.set_defaults(handler=_rotate)


def _open() -> CredentialStore:
    return Settings.from_env().credential_source().open()


def _keygen(args: argparse.Namespace) -> int:
    key = write_key_file(args.key_file)
    console.print(f"Wrote a new master key (id {key_id(key)}) to {args.key_file} (mode 0600). "
                  f"Set HELIOS_MASTER_KEY_FILE={args.key_file}.")
    return 0


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value = getpass.getpass(f"Value of {name} (not echoed): ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CliError(f"No value for {name} on standard input: pipe it in, e.g. "
                       f"`printf %s \"$KEY\" | helios secrets set {name}`.")
    return value


def _set(args: argparse.Namespace) -> int:
    name = check_name(args.name)
    store = _open()
    store.set(name, _read_value(name))
    console.print(f"Stored {name} in {store.path}.")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _open()
    names = store.names()
    if not names:
        console.print(f"No credentials in {store.path}.")
    for name in names:
        console.print(name, highlight=False)
    return 0


def _delete(args: argparse.Namespace) -> int:
    store = _open()
    store.delete(args.name)
    console.print(f"Deleted {args.name} from {store.path}.")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    store = _open()
    new_key = write_key_file(args.new_key_file)
    store.rotate(new_key)
    console.print(f"Re-encrypted {store.path} under the new key (id {key_id(new_key)}) in "
                  f"{args.new_key_file}; the old key no longer opens it. Set "
                  f"HELIOS_MASTER_KEY_FILE={args.new_key_file} and unset HELIOS_MASTER_KEY.")
    return 0
