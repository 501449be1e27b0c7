"""The encrypted credential store: owner-only keys, wrong keys and tampering refused."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.security.credentials import (
    CredentialError,
    CredentialSource,
    CredentialStore,
    write_key_file,
)
from helios_pipeline.security.redact import redact


@pytest.fixture
def source(tmp_path: Path) -> CredentialSource:
    key_file = tmp_path / "master.key"
    write_key_file(key_file)
    return CredentialSource(tmp_path / "secrets" / "credentials.json", key_file=key_file,
                            audit_db=tmp_path / "metadata.sqlite")


def test_values_round_trip_and_are_not_in_the_file(source: CredentialSource) -> None:
    store = source.open()
    store.set("binance.apiKey", "planted-api-key-123")
    store.set("binance.secret", "planted-secret-456")
    raw = source.store.read_text()
    assert "planted" not in raw
    assert source.store.stat().st_mode & 0o777 == 0o600
    again = source.open()
    assert again.names() == ["binance.apiKey", "binance.secret"]
    assert again.exchange_credentials("binance") == {
        "apiKey": "planted-api-key-123", "secret": "planted-secret-456"}
    assert "planted-secret-456" not in redact("leaked planted-secret-456")


def test_the_exchange_client_takes_its_keys_from_the_store(source: CredentialSource) -> None:
    store = source.open()
    store.set("binance.apiKey", "client-api-key-1")
    store.set("binance.secret", "client-secret-2")
    client = ExchangeClient("binance", credentials=source)
    assert client._exchange.apiKey == "client-api-key-1"
    assert client._exchange.secret == "client-secret-2"  # noqa: S105 (planted test value)
    uses = AuditLog(source.audit_db or Path()).entries(kind="credential_use")
    assert [(u.subject, u.detail["fields"]) for u in uses] == [("binance", ["apiKey", "secret"])]


def test_wrong_key_says_so_and_is_audited(source: CredentialSource) -> None:
    source.open().set("binance.apiKey", "k-123456")
    wrong = CredentialSource(source.store, master_key=Fernet.generate_key().decode(),
                             audit_db=source.audit_db)
    with pytest.raises(CredentialError, match="Wrong master key"):
        wrong.open()
    denied = AuditLog(source.audit_db or Path()).entries(kind="access_denied")
    assert len(denied) == 1
    assert "Wrong master key" in denied[0].detail["reason"]


def test_tampered_token_is_refused(source: CredentialSource) -> None:
    source.open().set("binance.apiKey", "k-123456")
    envelope = json.loads(source.store.read_text())
    token = bytearray(base64.urlsafe_b64decode(envelope["token"]))
    token[40] ^= 0x01  # one bit of the ciphertext
    envelope["token"] = base64.urlsafe_b64encode(bytes(token)).decode()
    source.store.write_text(json.dumps(envelope))
    with pytest.raises(CredentialError, match="tampered"):
        source.open()


def test_garbage_file_is_refused(source: CredentialSource) -> None:
    source.store.parent.mkdir(parents=True)
    source.store.write_text("not json")
    with pytest.raises(CredentialError, match="tampered"):
        source.open()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused(source: CredentialSource, mode: int) -> None:
    assert source.key_file is not None
    source.key_file.chmod(mode)
    with pytest.raises(CredentialError, match="chmod 600"):
        source.open()


def test_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("changing a file's owner needs root")
    key_file = tmp_path / "other.key"
    write_key_file(key_file)
    os.chown(key_file, 65534, 65534)
    with pytest.raises(CredentialError, match="owned by uid 65534"):
        CredentialSource(tmp_path / "c.json", key_file=key_file).open()


def test_no_key_and_bad_key_explain_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="HELIOS_MASTER_KEY or HELIOS_MASTER_KEY_FILE"):
        CredentialSource(tmp_path / "c.json").open()
    with pytest.raises(CredentialError, match="HELIOS_MASTER_KEY is not a Fernet key"):
        CredentialSource(tmp_path / "c.json", master_key="short").open()


def test_rotation_re_encrypts_under_the_new_key(source: CredentialSource, tmp_path: Path) -> None:
    store = source.open()
    store.set("okx.password", "okx-passphrase-1")
    new_key = write_key_file(tmp_path / "new.key")
    store.rotate(new_key)
    with pytest.raises(CredentialError, match="Wrong master key"):
        source.open()
    rotated = CredentialStore(source.store, new_key)
    assert rotated.get("okx.password") == "okx-passphrase-1"


def test_bad_names_and_missing_deletes_are_explained(source: CredentialSource) -> None:
    store = source.open()
    with pytest.raises(CredentialError, match=r"expected exchange\.field"):
        store.set("../etc/passwd", "x" * 10)
    with pytest.raises(CredentialError, match=r"No credential named binance\.secret"):
        store.delete("binance.secret")
