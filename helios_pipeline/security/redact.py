"""The one sanitiser: masks credentials in any text before it is logged, printed or posted.

What it masks (with ``***``):

* the password of a URL (``redis://:pw@host``, ``https://user:pw@host``);
* query parameters that carry credentials (``?signature=...``, ``&apiKey=...``, ``token=``);
* ``key: value`` / ``key=value`` pairs whose key names a credential (``apiKey``, ``secret``,
  ``password``, ``token``, ``signature``, ``X-MBX-APIKEY``, ...);
* ``Authorization: Bearer ...`` / ``Basic ...`` headers and bare ``Bearer`` tokens;
* every value registered with :func:`register_secret` (credentials read from the store, the
  master key), wherever it appears.

:func:`redact` works on text, :func:`redact_mapping` on JSON-like payloads (alerts, reports).
``install_redaction`` (in :mod:`helios_pipeline.security.logs`) applies it to every log record
and, for the CLI, to stdout and stderr.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

MASK = "***"

# Shorter values would mask ordinary words and numbers everywhere.
MIN_SECRET_LENGTH = 6

_CREDENTIAL_WORDS = (
    r"api[_-]?key|api[_-]?secret|secret(?:[_-]?key)?|password|passwd|pwd|passphrase"
    r"|access[_-]?token|refresh[_-]?token|auth[_-]?token|token|signature|private[_-]?key"
    r"|client[_-]?secret|master[_-]?key|x-mbx-apikey|ok-access-key|ok-access-sign"
    r"|ok-access-passphrase"
)
_KEY_NAME = re.compile(rf"^(?:.*[_-])?(?:{_CREDENTIAL_WORDS})$", re.IGNORECASE)

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*):(?P<pw>[^\s@/?#]+)@", re.IGNORECASE
)
_QUERY_PARAM = re.compile(
    rf"(?P<head>[?&;](?:{_CREDENTIAL_WORDS}|sig|key|auth)=)(?P<value>[^&\s#\"'<>]+)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<head>\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest)\s+)?)"
    r"(?P<value>[^\s\"',;}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=\-]{6,})", re.IGNORECASE)
_KEY_VALUE = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9])(?:{_CREDENTIAL_WORDS})[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?!\*\*\*)[^\s\"',;&}\]]+)",
    re.IGNORECASE,
)

# Any word the pair, query and header patterns start from (searched in lowercased text).
_HINT = re.compile(rf"{_CREDENTIAL_WORDS}|sig|key|auth")

_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) wherever it appears from now on.

    Values shorter than :data:`MIN_SECRET_LENGTH` are ignored: masking ``"abc"`` everywhere
    would garble ordinary output, and such a value is no secret worth the name.
    """
    global _secrets_pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value)}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def registered_secret_count() -> int:
    """How many distinct values (including encoded forms) are registered."""
    return len(_secrets)


def forget_secrets() -> None:
    """Drop every registered value (tests and a key rotation start from a clean slate)."""
    global _secrets_pattern
    with _lock:
        _secrets.clear()
        _secrets_pattern = None


def redact(text: str) -> str:
    """``text`` with every credential it contains replaced by ``***``."""
    if not text:
        return text
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    # Cheap substring tests first: most log lines carry no credential and skip every regex.
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    lower = text.lower()
    if "bearer" in lower:
        text = _BEARER.sub(rf"\g<head>{MASK}", text)
    if ("=" not in text and ":" not in text) or not _HINT.search(lower):
        return text
    if "authorization" in lower:
        text = _AUTH_HEADER.sub(rf"\g<head>{MASK}", text)
    if "=" in text:
        text = _QUERY_PARAM.sub(rf"\g<head>{MASK}", text)
    return _KEY_VALUE.sub(rf"\g<head>{MASK}", text)


def is_secret_key(name: str) -> bool:
    """Whether a field called ``name`` holds a credential (``apiKey``, ``webhook_secret``)."""
    return bool(_KEY_NAME.match(name.strip()))


def redact_value(value: object) -> object:
    """A JSON-like value with credentials masked: strings redacted, containers walked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


def redact_mapping(payload: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``payload`` where credential-named fields are ``***`` and all text is redacted."""
    return {
        key: MASK if is_secret_key(str(key)) and value not in (None, "") else redact_value(value)
        for key, value in payload.items()
    }
