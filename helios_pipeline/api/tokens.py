"""Bearer tokens for the read API: who may read which symbols, data kinds and tiers, how often.

Tokens live in their own SQLite file, ``<data_dir>/api_tokens.sqlite``. The secret is shown once,
by :meth:`TokenStore.create`; only its SHA-256 is stored, so a copy of the file reveals no token.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from helios_pipeline.domain.symbols import normalize_symbol

KINDS = ("price", "ohlcv", "indicators", "quality")
TIERS = ("hot", "warm", "archive")
ANY = "*"
TOKEN_PREFIX = "hel_"  # noqa: S105 - a marker that makes leaked tokens greppable, no secret

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    symbols TEXT NOT NULL,
    kinds TEXT NOT NULL,
    tiers TEXT NOT NULL,
    rate_per_min INTEGER NOT NULL,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


class TokenError(ValueError):
    """A token operation that cannot be done as asked (duplicate name, bad scope, ...)."""


class AuthError(Exception):
    """A request's token is missing, malformed, unknown, expired or revoked (HTTP 401)."""


@dataclass(frozen=True)
class Scope:
    """What a token may read. ``None`` symbols or tiers means every one (``*``).

    Attributes:
        symbols: Unified symbols (``BTC/USDT``), or ``None`` for all.
        kinds: Data kinds among :data:`KINDS`.
        tiers: Tiers among :data:`TIERS`, or ``None`` for all.
    """

    symbols: frozenset[str] | None
    kinds: frozenset[str]
    tiers: frozenset[str] | None

    @classmethod
    def parse(cls, symbols: str, kinds: str, tiers: str = ANY) -> Scope:
        """A scope from comma-separated lists (``*`` for every symbol or tier).

        Raises:
            TokenError: An unknown kind or tier, a bad symbol, or an empty list.
        """
        return cls(
            symbols=None if symbols.strip() == ANY else frozenset(
                normalize_symbol(s) for s in _items("symbols", symbols)),
            kinds=_checked("kinds", kinds, KINDS),
            tiers=None if tiers.strip() == ANY else _checked("tiers", tiers, TIERS),
        )

    def allows_symbol(self, symbol: str) -> bool:
        """Whether the unified ``symbol`` is covered."""
        return self.symbols is None or symbol in self.symbols

    def allows_tier(self, tier: str) -> bool:
        """Whether rows from ``tier`` may be shown."""
        return self.tiers is None or tier in self.tiers

    def describe(self) -> dict[str, str]:
        """The scope as the comma-separated text it was created from."""
        return {"symbols": _join(self.symbols), "kinds": ",".join(sorted(self.kinds)),
                "tiers": _join(self.tiers)}


@dataclass(frozen=True)
class Token:
    """A stored token (never the secret)."""

    name: str
    scope: Scope
    rate_per_min: int
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def state_now(self) -> str:
        """:meth:`state` at the current time."""
        return self.state(datetime.now(UTC))


class TokenStore:
    """The token table of one data root.

    Args:
        path: The SQLite file (``<data_dir>/api_tokens.sqlite``, see :func:`tokens_path`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection in autocommit mode, shared under a lock: opening one per request
        # costs ~20x the lookup. Each statement sees what other processes committed before it.
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False,
                                   isolation_level=None)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(_SCHEMA)

    def create(self, name: str, scope: Scope, rate_per_min: int = 60,
               expires_at: datetime | None = None) -> str:
        """Store a new token and return its secret: the only time it is available.

        Raises:
            TokenError: The name is taken or empty, the rate is not positive, or the expiry is
                naive.
        """
        _check_new(name, rate_per_min, expires_at)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        described = scope.describe()
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    (name, _digest(secret), described["symbols"], described["kinds"],
                     described["tiers"], rate_per_min,
                     None if expires_at is None else expires_at.isoformat(),
                     datetime.now(UTC).isoformat()))
        except sqlite3.IntegrityError:
            raise TokenError(f"A token named {name!r} exists already; revoke it or pick another "
                             "name.") from None
        return secret

    def revoke(self, name: str) -> None:
        """Revoke the token ``name`` for good (it stays listed, as revoked).

        Raises:
            TokenError: No token has that name.
        """
        with self._connect() as db:
            changed = db.execute(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?",
                (datetime.now(UTC).isoformat(), name)).rowcount
        if not changed:
            known = ", ".join(t.name for t in self.list()) or "none"
            raise TokenError(f"No token named {name!r} (tokens: {known}).")

    def list(self) -> list[Token]:
        """Every token, active or not, by name."""
        with self._connect() as db:
            rows = db.execute("SELECT name, symbols, kinds, tiers, rate_per_min, expires_at, "
                              "created_at, revoked_at FROM api_tokens ORDER BY name").fetchall()
        return [_token(row) for row in rows]

    def authenticate(self, secret: str, now: datetime | None = None) -> Token:
        """The active token whose secret this is.

        Raises:
            AuthError: Unknown, expired or revoked; the message says which.
        """
        with self._connect() as db:
            row = db.execute("SELECT name, symbols, kinds, tiers, rate_per_min, expires_at, "
                             "created_at, revoked_at FROM api_tokens WHERE token_sha256 = ?",
                             (_digest(secret),)).fetchone()
        if row is None:
            raise AuthError("Unknown token: it was never issued here (check for a copy error).")
        token = _token(row)
        state = token.state(now or datetime.now(UTC))
        if state == "revoked":
            raise AuthError(f"Token {token.name!r} was revoked; ask for a new one.")
        if state == "expired":
            raise AuthError(f"Token {token.name!r} expired at {token.expires_at:%Y-%m-%d %H:%M} "
                            "UTC; ask for a new one.")
        return token

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db


def tokens_path(data_dir: Path) -> Path:
    """The token file of a data root."""
    return data_dir / "api_tokens.sqlite"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_new(name: str, rate_per_min: int, expires_at: datetime | None) -> None:
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise TokenError(f"Token name {name!r}: use letters, digits, '-', '_' or '.'.")
    if rate_per_min <= 0:
        raise TokenError(f"rate {rate_per_min}: give a positive number of requests per minute.")
    if expires_at is not None and expires_at.tzinfo is None:
        raise TokenError(f"expires_at {expires_at}: give a time zone (UTC).")


def _items(what: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise TokenError(f"No {what} given: use a comma-separated list or '*'.")
    return items


def _checked(what: str, text: str, allowed: Iterable[str]) -> frozenset[str]:
    known = tuple(allowed)
    items = frozenset(item.lower() for item in _items(what, text))
    unknown = sorted(items - set(known))
    if unknown:
        raise TokenError(f"Unknown {what} {', '.join(unknown)}: choose from {', '.join(known)}.")
    return items


def _join(values: frozenset[str] | None) -> str:
    return ANY if values is None else ",".join(sorted(values))


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _token(row: tuple[str, str, str, str, int, str | None, str, str | None]) -> Token:
    name, symbols, kinds, tiers, rate, expires, created, revoked = row
    scope = Scope(symbols=None if symbols == ANY else frozenset(symbols.split(",")),
                  kinds=frozenset(kinds.split(",")),
                  tiers=None if tiers == ANY else frozenset(tiers.split(",")))
    return Token(name, scope, rate, _when(expires), datetime.fromisoformat(created),
                 _when(revoked))
