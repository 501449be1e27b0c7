"""The simulator's own admin endpoints, shared by every venue's app.

``POST /_sim/faults`` (body = spec, replaces the active one; empty clears), ``GET /_sim/faults``,
``GET /_sim/stats`` and ``POST /_sim/reset`` (clears statistics, fired counters and limits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from helios_pipeline.exchanges.sim.faults import FaultInjector, FaultSpecError
from helios_pipeline.exchanges.sim.wire import dumps


class AdminTarget(Protocol):
    """What a simulated venue offers its admin endpoints."""

    @property
    def faults(self) -> FaultInjector:
        """The active fault injector."""

    def set_faults(self, spec: str) -> None:
        """Replace the fault spec (raises ``FaultSpecError``)."""

    def stats(self) -> dict[str, Any]:
        """Request and fault statistics."""

    def reset(self) -> None:
        """Clear statistics, fired counters and rate limits."""


def add_admin_routes(app: web.Application, target: Callable[[web.Request], AdminTarget]) -> None:
    """Register the ``/_sim/*`` endpoints; ``target`` finds the venue behind a request."""

    def respond(payload: object, status: int = 200) -> web.Response:
        return web.Response(body=dumps(payload), status=status, content_type="application/json",
                            charset="UTF-8")

    async def set_faults(request: web.Request) -> web.Response:
        sim = target(request)
        try:
            sim.set_faults(await request.text())
        except FaultSpecError as exc:
            return respond({"error": str(exc)}, 400)
        return respond({"faults": sim.faults.spec.text})

    async def get_faults(request: web.Request) -> web.Response:
        return respond({"faults": target(request).faults.spec.text})

    async def get_stats(request: web.Request) -> web.Response:
        return respond(target(request).stats())

    async def reset(request: web.Request) -> web.Response:
        target(request).reset()
        return respond({})

    app.router.add_post("/_sim/faults", set_faults)
    app.router.add_get("/_sim/faults", get_faults)
    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_post("/_sim/reset", reset)
