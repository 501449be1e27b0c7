"""Exchange credentials in a Fernet-encrypted file, opened with a master key.

The master key comes from ``HELIOS_MASTER_KEY`` or from a key file (``HELIOS_MASTER_KEY_FILE``)
that only its owner can read (mode ``0600`` or stricter, owned by the current user); anything
else is refused with the reason and the fix.

The store file is JSON: ``{"format", "key_id", "token"}``. ``token`` is one Fernet token
(AES-128-CBC + HMAC-SHA256) of ``{"secrets": {name: value}}``; ``key_id`` is a one-way
fingerprint of the key, so a wrong key is told apart from a tampered file: a key whose id does
not match is "the wrong key", a matching key whose token fails authentication is "tampered".

Names are ``exchange.field`` (``binance.apiKey``, ``binance.secret``, ``okx.password``); the
exchange client reads its ``apiKey``, ``secret`` and ``password`` from here and nowhere else.
Every value read is registered with the sanitiser, so it is masked in all output from then on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from helios_pipeline.security.audit import AuditLog
from helios_pipeline.security.redact import register_secret

FORMAT = "helios-credentials/1"
EXCHANGE_FIELDS = ("apiKey", "secret", "password", "uid")
NAME = re.compile(r"^[a-z0-9_]+\.[A-Za-z0-9_]+$")


class CredentialError(Exception):
    """The store or its key cannot be used; the message says why and what to do."""


def key_id(key: bytes) -> str:
    """A one-way fingerprint of a Fernet key (16 hex digits)."""
    return hashlib.sha256(b"helios-key-id:" + key).hexdigest()[:16]


def check_name(name: str) -> str:
    """``name`` if it is ``exchange.field`` (``binance.apiKey``).

    Raises:
        CredentialError: It is not.
    """
    if not NAME.match(name):
        raise CredentialError(
            f"Credential name {name!r}: expected exchange.field with a lowercase exchange id, "
            "e.g. binance.apiKey or binance.secret.")
    return name


def parse_key(raw: str | bytes, where: str) -> bytes:
    """A Fernet key from text, checked.

    Raises:
        CredentialError: It is not a 32-byte url-safe base64 key.
    """
    key = raw.strip() if isinstance(raw, bytes) else raw.strip().encode("ascii", "replace")
    try:
        Fernet(key)
    except ValueError:
        raise CredentialError(
            f"{where} is not a Fernet key (32 url-safe base64-encoded bytes): create one with "
            "`helios secrets keygen KEYFILE`.") from None
    return key


def read_key_file(path: Path) -> bytes:
    """The key in ``path``, if only its owner (this user) can read it.

    Raises:
        CredentialError: Missing, not a regular file, owned by someone else, readable or
            writable by group or others, or not a key.
    """
    where = f"Master key file {path} (HELIOS_MASTER_KEY_FILE)"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CredentialError(f"{where} does not exist: create it with "
                              f"`helios secrets keygen {path}`.") from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialError(f"{where} is not a regular file.")
    if info.st_uid != os.getuid():
        raise CredentialError(f"{where} is owned by uid {info.st_uid}, not by you "
                              f"(uid {os.getuid()}): refusing it.")
    if info.st_mode & 0o077:
        raise CredentialError(
            f"{where} has mode {stat.S_IMODE(info.st_mode):04o}: others can read or change "
            f"it. Run `chmod 600 {path}`.")
    key = parse_key(path.read_bytes(), where)
    register_secret(key.decode("ascii"))
    return key


def write_key_file(path: Path, key: bytes | None = None) -> bytes:
    """Create ``path`` (mode 0600, never overwriting) holding ``key`` or a new one.

    Raises:
        CredentialError: ``path`` exists already.
    """
    key = key or Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CredentialError(f"{path} exists already: choose a new file for the key.") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    register_secret(key.decode("ascii"))
    return key


@dataclass(frozen=True)
class CredentialSource:
    """Where the credentials are and how to open them (no secret in ``repr``).

    Attributes:
        store: The encrypted store file.
        master_key: The key itself (``HELIOS_MASTER_KEY``), or ``None`` to use ``key_file``.
        key_file: The owner-only key file (``HELIOS_MASTER_KEY_FILE``).
        audit_db: Metadata database whose audit trail records every use; ``None``: none.
    """

    store: Path
    master_key: str | None = field(default=None, repr=False)
    key_file: Path | None = None
    audit_db: Path | None = None

    def key(self) -> bytes:
        """The master key.

        Raises:
            CredentialError: Neither source is set, or the one set is unusable.
        """
        if self.master_key:
            key = parse_key(self.master_key, "HELIOS_MASTER_KEY")
            register_secret(self.master_key.strip())
            return key
        if self.key_file is not None:
            return read_key_file(self.key_file)
        raise CredentialError("No master key: set HELIOS_MASTER_KEY or HELIOS_MASTER_KEY_FILE "
                              "(create a key file with `helios secrets keygen KEYFILE`).")

    def open(self) -> CredentialStore:
        """The store, opened with :meth:`key`; a refusal is audited as ``access_denied``."""
        audit = AuditLog(self.audit_db) if self.audit_db is not None else None
        try:
            return CredentialStore(self.store, self.key(), audit)
        except CredentialError as exc:
            if audit is not None:
                audit.record("access_denied", str(self.store), reason=str(exc))
            raise

    def exchange_credentials(self, exchange_id: str) -> dict[str, str]:
        """The ccxt ``apiKey``, ``secret``, ``password``, ``uid`` of ``exchange_id`` (may be empty).

        A missing store file means no credentials (public endpoints only).
        """
        if not self.store.exists():
            return {}
        return self.open().exchange_credentials(exchange_id)


class CredentialStore:
    """The decrypted view of one store file; every change is written back at once.

    Args:
        path: The store file (created on the first :meth:`set`).
        key: The master key.
        audit: Where sets, deletions, uses and rotations are recorded.

    Raises:
        CredentialError: Wrong key, tampered or unreadable file.
    """

    def __init__(self, path: Path, key: bytes, audit: AuditLog | None = None) -> None:
        self.path = path
        self._key = key
        self._audit = audit
        self._values = self._load()

    def names(self) -> list[str]:
        """Stored names, sorted; never values."""
        return sorted(self._values)

    def get(self, name: str) -> str | None:
        """The value of ``name`` (registered as a secret), or ``None``; audited."""
        value = self._values.get(check_name(name))
        if value is not None:
            register_secret(value)
            self._record("credential_use", name)
        return value

    def exchange_credentials(self, exchange_id: str) -> dict[str, str]:
        """The ccxt credential fields stored for ``exchange_id``; their use is audited."""
        found = {f: self._values[f"{exchange_id}.{f}"] for f in EXCHANGE_FIELDS
                 if f"{exchange_id}.{f}" in self._values}
        for value in found.values():
            register_secret(value)
        if found:
            self._record("credential_use", exchange_id, fields=sorted(found))
        return found

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any)."""
        if not value:
            raise CredentialError(f"No value given for {name}: pass it on standard input.")
        register_secret(value)
        self._values[check_name(name)] = value
        self._save()
        self._record("credential_set", name)

    def delete(self, name: str) -> None:
        """Remove ``name``.

        Raises:
            CredentialError: It is not stored.
        """
        if self._values.pop(check_name(name), None) is None:
            raise CredentialError(f"No credential named {name}: `helios secrets list` shows "
                                  "the stored names.")
        self._save()
        self._record("credential_delete", name)

    def rotate(self, new_key: bytes) -> None:
        """Re-encrypt everything under ``new_key``; the old key no longer opens the store."""
        old = key_id(self._key)
        self._key = new_key
        self._save()
        self._record("key_rotation", str(self.path), old_key_id=old, new_key_id=key_id(new_key))

    def _record(self, kind: str, subject: str, **detail: object) -> None:
        if self._audit is not None:
            self._audit.record(kind, subject, store=str(self.path), **detail)

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            envelope = json.loads(self.path.read_text(encoding="utf-8"))
            stored_id, token = envelope["key_id"], envelope["token"]
            if envelope.get("format") != FORMAT:
                raise ValueError(envelope.get("format"))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise CredentialError(f"Credential store {self.path} is not a Helios store or was "
                                  "tampered with: refusing it. Restore it from a backup.") from None
        if stored_id != key_id(self._key):
            raise CredentialError(
                f"Wrong master key for {self.path}: it was encrypted with key id {stored_id}, "
                f"the key given has id {key_id(self._key)}. Use the key the store was written "
                "with (HELIOS_MASTER_KEY or HELIOS_MASTER_KEY_FILE).")
        return self._decrypt(str(token))

    def _decrypt(self, token: str) -> dict[str, str]:
        try:
            plain = Fernet(self._key).decrypt(token.encode("ascii"))
            values = json.loads(plain)["secrets"]
        except (InvalidToken, ValueError, KeyError, TypeError, UnicodeEncodeError):
            raise CredentialError(f"Credential store {self.path} was tampered with (its "
                                  "content fails authentication): refusing it. Restore it "
                                  "from a backup.") from None
        if not isinstance(values, Mapping):
            raise CredentialError(f"Credential store {self.path} holds no credential table.")
        return {str(k): str(v) for k, v in values.items()}

    def _save(self) -> None:
        plain = json.dumps({"secrets": self._values}, sort_keys=True).encode("utf-8")
        envelope = {"format": FORMAT, "key_id": key_id(self._key),
                    "token": Fernet(self._key).encrypt(plain).decode("ascii")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(envelope, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
