"""Binance wire-format helpers for the simulated exchange: 8-place decimals, JSON, stable seeds.

Money travels as exact integers in units of 1e-8 (``SCALE``) inside the simulator and is
formatted the way Binance spot formats it: a decimal string with eight places
(``"43519.34000000"``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any

SCALE = 100_000_000
_PLACES = 8

try:
    _orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - orjson is optional
    _orjson = None


def dumps(obj: object) -> bytes:
    """Compact JSON bytes (orjson when installed, else the standard library)."""
    if _orjson is not None:
        encoded: bytes = _orjson.dumps(obj)
        return encoded
    return json.dumps(obj, separators=(",", ":")).encode()


def fmt8(units: int) -> str:
    """Format an amount in 1e-8 units as Binance does: ``4351934000000 -> "43519.34000000"``."""
    if units < 0:
        return "-" + fmt8(-units)
    whole, frac = divmod(units, SCALE)
    return f"{whole}.{frac:08d}"


def to_units(text: str) -> int:
    """Parse a decimal string into exact 1e-8 units.

    Raises:
        ValueError: ``text`` is not a plain decimal or has more than eight decimal places.
    """
    whole, _, frac = text.strip().partition(".")
    if len(frac) > _PLACES or not (whole.lstrip("-") + frac).isdigit():
        raise ValueError(f"Bad decimal {text!r}: expected at most {_PLACES} decimal places.")
    return int(whole + frac.ljust(_PLACES, "0"))


def stable_seed(*parts: str | int) -> int:
    """A 63-bit seed that depends only on ``parts`` (not on Python's per-process ``hash``)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 1


def unit_interval(*parts: str | int) -> float:
    """A stable pseudo-random number in ``[0, 1)`` derived from ``parts``."""
    return stable_seed(*parts) / float(1 << 63)
