"""Query-parameter checks of the simulated exchange, with Binance's error codes and messages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

_INT = re.compile(r"^-?[0-9]{1,20}$")
_SYMBOL = re.compile(r"^[A-Z0-9\-_.]{1,20}$")


class BinanceError(Exception):
    """An error the API answers as ``{"code": ..., "msg": ...}`` with an HTTP status."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        """Create the error answered with ``status`` and body ``{"code", "msg"}``."""
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def bad_request(code: int, msg: str) -> BinanceError:
    """A 400 error with a Binance error code."""
    return BinanceError(400, code, msg)


def mandatory(query: Mapping[str, str], name: str) -> str:
    """A parameter that must be present and non-empty (-1102 otherwise)."""
    value = query.get(name, "")
    if not value:
        raise bad_request(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                 "or malformed.")
    return value


def optional_int(query: Mapping[str, str], name: str) -> int | None:
    """An optional integer parameter (-1100 when it is not an integer)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not _INT.match(raw):
        raise bad_request(-1100, f"Illegal characters found in parameter '{name}'; legal range "
                                 f"is '{_INT.pattern}'.")
    return int(raw)


def limit_param(query: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit``: ``default`` when absent, capped at ``maximum``, -1130 when below 1."""
    value = optional_int(query, "limit")
    if value is None:
        return default
    if value < 1:
        raise bad_request(-1130, "Data sent for parameter 'limit' is not valid.")
    return min(value, maximum)


def symbol_param(query: Mapping[str, str], known: Mapping[str, object]) -> str:
    """The mandatory ``symbol``: -1100 for illegal characters, -1121 when not listed."""
    symbol = mandatory(query, "symbol")
    if not _SYMBOL.match(symbol):
        raise bad_request(-1100, "Illegal characters found in parameter 'symbol'; legal range "
                                 f"is '{_SYMBOL.pattern}'.")
    if symbol not in known:
        raise bad_request(-1121, "Invalid symbol.")
    return symbol


def symbols_param(query: Mapping[str, str], known: Mapping[str, object]) -> list[str]:
    """The ``symbols`` JSON array: -1100 when malformed, -1121 unknown, -1151 duplicates."""
    try:
        parsed = json.loads(query["symbols"])
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or not parsed or not all(
            isinstance(s, str) and _SYMBOL.match(s) for s in parsed):
        raise bad_request(-1100, "Illegal characters found in parameter 'symbols'; legal range "
                                 "is a JSON array of symbols such as [\"BTCUSDT\",\"ETHUSDT\"].")
    if len(set(parsed)) != len(parsed):
        raise bad_request(-1151, "Symbol is present multiple times in the list.")
    if any(s not in known for s in parsed):
        raise bad_request(-1121, "Invalid symbol.")
    return [str(s) for s in parsed]


def selection(query: Mapping[str, str], known: Mapping[str, object]) -> tuple[list[str], bool]:
    """Symbols selected by ``symbol`` | ``symbols`` | neither (all), and whether single."""
    if "symbol" in query and "symbols" in query:
        raise bad_request(-1128, "Combination of optional parameters invalid.")
    if "symbol" in query:
        return [symbol_param(query, known)], True
    if "symbols" in query:
        return symbols_param(query, known), False
    return list(known), False


def utc_time_zone(query: Mapping[str, str]) -> None:
    """Only UTC is served: ``timeZone`` may be absent or a zero offset (-1130 otherwise)."""
    raw = query.get("timeZone")
    if raw and raw.lstrip("+-") not in ("0", "00", "0:00", "00:00"):
        raise bad_request(-1130, "Data sent for parameter 'timeZone' is not valid (the "
                                 "simulator serves UTC only).")
