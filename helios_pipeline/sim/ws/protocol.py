"""Live control frames of Binance market streams: parsing, checks and the replies.

Clients send ``{"method": ..., "params": [...], "id": ...}`` with method ``SUBSCRIBE``,
``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` or ``GET_PROPERTY`` (the only property
is ``combined``). ``id`` is a 64-bit integer, an alphanumeric string of up to 36 characters or
null. Successful requests are answered ``{"result": ..., "id": ...}``; bad frames get Binance's
error objects ``{"error": {"code": C, "msg": M}, "id": ...}`` with code 0 (unknown property),
1 (invalid value type), 2 (invalid request) or 3 (invalid JSON).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID_TEXT = re.compile(r"^[A-Za-z0-9]{1,36}$")
_INT64 = 1 << 63
_MISSING = object()

RequestId = int | str | None


class ControlError(Exception):
    """A control frame Binance would reject; :meth:`reply` is the error frame to send."""

    def __init__(self, code: int, msg: str, request_id: RequestId = None) -> None:
        """Create the error with Binance's ``code`` and ``msg``."""
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id

    def reply(self) -> dict[str, Any]:
        """``{"error": {"code", "msg"}, "id"}``."""
        return {"error": {"code": self.code, "msg": self.msg}, "id": self.request_id}


@dataclass(frozen=True)
class Control:
    """A well-formed control frame."""

    method: str
    params: list[Any]
    request_id: RequestId


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


def _request_id(frame: dict[str, Any]) -> RequestId:
    value = frame.get("id", _MISSING)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64:
        return value
    if isinstance(value, str) and _ID_TEXT.match(value):
        return value
    raise ControlError(2, "Invalid request: request ID must be an unsigned integer")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        line, column = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (1, 1)
        raise ControlError(3, f"Invalid JSON: expected value at line {line} column {column}"
                           ) from None


def parse_control(text: str | bytes) -> Control:
    """Parse and check one frame a client sent.

    Raises:
        ControlError: The frame is not JSON, not a request object, has a bad id, an unknown
            method or bad params (the error carries the id when it could be read).
    """
    frame = _decode(text)
    if not isinstance(frame, dict):
        raise ControlError(2, f"Invalid request: invalid type: {_json_type(frame)}, expected "
                              "struct Request at line 1 column 1")
    request_id = _request_id(frame)
    method = frame.get("method", _MISSING)
    if method is _MISSING:
        raise ControlError(2, "Invalid request: missing field `method`", request_id)
    if method not in METHODS:
        raise ControlError(2, f"Invalid request: unknown variant {_json_type(method)}, expected "
                              f"one of {', '.join(f'`{m}`' for m in METHODS)}", request_id)
    params = frame.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ControlError(2, f"Invalid request: invalid type: {_json_type(params)}, expected "
                              "a sequence", request_id)
    return Control(str(method), params, request_id)


def stream_params(control: Control) -> list[str]:
    """The stream names of a ``SUBSCRIBE``/``UNSUBSCRIBE`` (duplicates dropped, order kept).

    Raises:
        ControlError: A param is not a string.
    """
    if not all(isinstance(p, str) for p in control.params):
        raise ControlError(2, "Invalid request: invalid stream", control.request_id)
    return list(dict.fromkeys(str(p) for p in control.params))


def property_params(control: Control, setting: bool) -> tuple[str, bool]:
    """``(name, value)`` of a ``SET_PROPERTY`` (``value`` False for ``GET_PROPERTY``).

    Raises:
        ControlError: Wrong number of params, a non-string name, an unknown property or a
            non-boolean value.
    """
    wanted = 2 if setting else 1
    params = control.params
    if len(params) > wanted:
        raise ControlError(2, "Invalid request: too many parameters", control.request_id)
    if len(params) < wanted:
        raise ControlError(2, "Invalid request: missing parameters", control.request_id)
    if not isinstance(params[0], str):
        raise ControlError(2, "Invalid request: property name must be a string",
                           control.request_id)
    if params[0] != "combined":
        raise ControlError(0, "Unknown property", control.request_id)
    if setting and not isinstance(params[1], bool):
        raise ControlError(1, "Invalid value type: expected Boolean", control.request_id)
    return params[0], bool(setting and params[1])


def result(value: Any, request_id: RequestId) -> dict[str, Any]:
    """``{"result": value, "id": request_id}``."""
    return {"result": value, "id": request_id}
