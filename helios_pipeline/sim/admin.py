"""The simulator's own admin endpoints, shared by every venue's app.

``POST /_sim/faults`` (body = spec, replaces the active one; empty clears), ``GET /_sim/faults``,
``GET /_sim/stats`` and ``POST /_sim/reset`` (clears statistics, fired counters and limits).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from helios_pipeline.sim.faults import FaultInjector, FaultSpecError, parse_faults
from helios_pipeline.sim.wire import dumps


class VenueBookkeeping:
    """The fault injector and request statistics every simulated venue keeps.

    A venue subclasses it, extends :meth:`reset` and :meth:`stats` with its own rate limits,
    and the ``/_sim/*`` endpoints work on it.

    Raises:
        FaultSpecError: ``faults`` is not a valid spec.
    """

    def __init__(self, faults: str) -> None:
        self.faults = FaultInjector(parse_faults(faults))
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def set_faults(self, spec: str) -> None:
        """Replace the active fault spec (empty clears it).

        Raises:
            FaultSpecError: ``spec`` is not valid; the active spec is kept.
        """
        injector = FaultInjector(parse_faults(spec))
        injector.fired = self.faults.fired  # counters survive spec changes
        self.faults = injector

    def reset(self) -> None:
        """Clear request statistics and fired-fault counters."""
        self.requests.clear()
        self.statuses.clear()
        self.faults.fired.clear()

    def stats(self) -> dict[str, Any]:
        """Request counts per path and status, request faults fired, data faults, the spec.

        ``faults_fired`` counts request faults (429, 5xx, ...) per kind, each time one answered
        a request; ``data_faults`` lists the data faults of the spec once each (they change
        every response that covers their minutes).
        """
        return {
            "requests": dict(self.requests),
            "total_requests": sum(self.requests.values()),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "faults_fired": dict(self.faults.fired),
            "data_faults": [fault.text for fault in self.faults.spec.data_faults],
            "faults": self.faults.spec.text,
        }


def add_admin_routes(
    app: web.Application, target: Callable[[web.Request], VenueBookkeeping]
) -> None:
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
