"""A real HTTP webhook receiver for alert tests: an aiohttp server on a free local port."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class Receiver:
    """A real aiohttp web server in its own thread that records every POST to ``/hook``.

    ``statuses`` are answered in order (then 200); ``delays_s`` make the first requests slow.
    """

    def __init__(self, statuses: list[int] | None = None, delays_s: list[float] | None = None):
        self.statuses = list(statuses or [])
        self.delays_s = list(delays_s or [])
        self.bodies: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/hook{query}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        # The receiver stands in for a third party: its own access log is not ours to check.
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.Response:
        self.queries.append(request.query_string)
        self.bodies.append(await request.json())
        if self.delays_s:
            await asyncio.sleep(self.delays_s.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status < 300}, status=status)
