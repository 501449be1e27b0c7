"""ASGI middleware of the read API: refuse oversized requests, record every request's outcome.

Handlers leave the token's name and the symbol in ``scope["state"]`` (``request.state``); the
middleware times the request, sees the status sent and hands an
:class:`~helios_pipeline.api.access.AccessRecord` to the recorder, whatever the outcome.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helios_pipeline.api.access import AccessRecord, AccessRecorder

log = logging.getLogger(__name__)


class AccessMiddleware:
    """Wraps the API app: size limits first, then the app, then the access record.

    Args:
        app: The Starlette app.
        recorder: Called once per HTTP request.
        max_url_bytes: Longest path plus query string accepted (413 beyond).
        max_body_bytes: Largest declared request body accepted (413 beyond).
    """

    def __init__(self, app: ASGIApp, recorder: AccessRecorder, max_url_bytes: int,
                 max_body_bytes: int) -> None:
        self.app = app
        self.recorder = recorder
        self.max_url_bytes = max_url_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, at = time.perf_counter(), datetime.now(UTC).isoformat()
        scope.setdefault("state", {})
        sent: dict[str, int] = {"status": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            await send(message)

        try:
            oversized = self._oversized(scope)
            if oversized is not None:
                await _refuse(watch, 413, oversized)
            else:
                await self.app(scope, receive, watch)
        finally:
            self._record(scope, at, sent["status"], (time.perf_counter() - started) * 1000)

    def _oversized(self, scope: Scope) -> str | None:
        url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
        if url > self.max_url_bytes:
            return (f"The request URL is {url} bytes; this service accepts up to "
                    f"{self.max_url_bytes}. Ask for less at a time.")
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"0").decode("latin-1")
        if not declared.isdigit() or int(declared) > self.max_body_bytes:
            return (f"The request body is {declared} bytes; this service accepts up to "
                    f"{self.max_body_bytes} (its endpoints take no body).")
        if b"transfer-encoding" in headers:
            return "Chunked request bodies are not accepted: this service's endpoints take none."
        return None

    def _record(self, scope: Scope, at: str, status: int, ms: float) -> None:
        state: dict[str, Any] = scope["state"]
        record = AccessRecord(at=at, token=state.get("token"), method=scope["method"],
                              route=scope["path"], symbol=state.get("symbol"), status=status,
                              ms=round(ms, 3))
        try:
            self.recorder(record)
        except Exception:  # a broken trail must be seen, yet must not turn answers into 500s
            log.exception("Could not record API access %s", record)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
