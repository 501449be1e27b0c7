"""The one error type the read API's handlers raise: an HTTP status with a message for people."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """Answer the request with ``status`` and ``{"error": message, "status": status}``.

    Args:
        status: HTTP status code.
        message: What was wrong and what to do, for the caller.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
