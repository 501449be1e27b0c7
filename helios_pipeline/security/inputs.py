"""Checks for values that come from outside (environment, command line) before they are used.

Each check returns the value in its usable form or raises ``ValueError`` with a message that
says what was expected; callers prefix the name of the variable or flag. Messages quote a URL
only redacted, so a mistyped URL never prints the password it carries.
"""

from __future__ import annotations

import math
import re
from datetime import date
from urllib.parse import urlsplit

from helios_pipeline.security.redact import redact

EXCHANGE_ID = re.compile(r"^[a-z0-9_]+$")

# Longer than any sensible network timeout, short enough to stay finite in milliseconds.
MAX_SECONDS = 86_400.0


def check_exchange_id(raw: str) -> str:
    """A ccxt exchange id safe to use in a path (``binance``, ``okx``, ``binanceus``).

    Raises:
        ValueError: Anything but lowercase letters, digits and ``_``.
    """
    if not EXCHANGE_ID.match(raw):
        raise ValueError("expected an exchange id of lowercase letters, digits and _ "
                         "(e.g. binance or okx).")
    return raw


def check_url(raw: str, schemes: tuple[str, ...]) -> str:
    """A URL with one of ``schemes`` and a host.

    Raises:
        ValueError: Unparsable, another scheme, or no host.
    """
    example = ("redis://127.0.0.1:6379/0" if schemes[0].startswith("redis")
               else f"{schemes[0]}://127.0.0.1:8080")
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise ValueError(f"not a URL; expected e.g. {example}.") from None
    if parts.scheme not in schemes:
        raise ValueError(f"expected a {' or '.join(schemes)} URL, e.g. {example}.")
    if not parts.hostname or not port_ok or any(c.isspace() for c in raw):
        raise ValueError(f"no usable host; expected e.g. {example}.")
    return raw


def shown(raw: str) -> str:
    """``raw`` as it may appear in a message: credentials masked."""
    return redact(raw)


def check_day(raw: str) -> str:
    """A ``YYYY-MM-DD`` day.

    Raises:
        ValueError: Not a real day in that form.
    """
    try:
        date.fromisoformat(raw)
    except ValueError:
        raise ValueError("expected a day as YYYY-MM-DD, e.g. 2024-01-31.") from None
    if len(raw) != len("2024-01-31"):
        raise ValueError("expected a day as YYYY-MM-DD, e.g. 2024-01-31.")
    return raw


def positive_number(raw: str, *, whole: bool, maximum: float | None = None) -> float | int:
    """A finite number above 0 (and at most ``maximum``).

    Raises:
        ValueError: Not a number, ``inf``/``nan``, 0 or less, or above ``maximum``.
    """
    try:
        number: float | int = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"expected {kind}, e.g. {'10' if whole else '2.5'}.") from None
    if not math.isfinite(number):
        raise ValueError("expected a finite number, not inf or nan.")
    if number <= 0:
        raise ValueError("must be greater than 0.")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum:g}.")
    return number
