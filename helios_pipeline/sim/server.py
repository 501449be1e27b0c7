"""The simulated exchange server: run it in a background thread or in the foreground.

``SimExchangeServer`` serves the aiohttp app of ``binance.app`` (the default venue) or of
``okx.app`` (``venue="okx"``) on its own event loop in a background thread (tests, the demo);
``serve_forever`` blocks (``helios sim-exchange``) until SIGINT or SIGTERM. ``SimExchange`` and
``build_app`` are re-exported for callers that host the app.

Example:
    >>> with SimExchangeServer(port=0) as sim:  # doctest: +SKIP
    ...     exchange.urls["api"]["public"] = sim.api_url
    >>> with SimExchangeServer(port=0, venue="okx") as okx:  # doctest: +SKIP
    ...     exchange.urls["api"]["rest"] = okx.api_url
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

from aiohttp import web

from helios_pipeline.sim.binance.app import SimExchange, build_app
from helios_pipeline.sim.binance.limits import wall_clock_ms as real_wall_clock_ms
from helios_pipeline.sim.faults import parse_faults
from helios_pipeline.sim.okx.app import OkxSimExchange, build_okx_app
from helios_pipeline.sim.ws.routes import WsConfig

__all__ = ["SimExchange", "SimExchangeServer", "Venue", "build_app", "serve_forever"]

Venue = Literal["binance", "okx"]
"""Which exchange's REST API the simulator speaks."""

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
_HOST = "127.0.0.1"
_SHUTDOWN_S = 1.0
_START_TIMEOUT_S = 30.0


def _app(sim: SimExchange | OkxSimExchange) -> web.Application:
    return build_okx_app(sim) if isinstance(sim, OkxSimExchange) else build_app(sim)


def _exchange(venue: Venue, **options: Any) -> SimExchange | OkxSimExchange:
    """The state of a simulated ``venue``; Binance-only options are ignored for OKX.

    Raises:
        ValueError: ``venue`` is neither ``binance`` nor ``okx``.
    """
    if venue == "binance":
        return SimExchange(**options)
    if venue == "okx":
        return OkxSimExchange(data_dir=options["data_dir"], faults=options["faults"],
                              symbols=options["symbols"], now_ms=options["now_ms"],
                              wall_clock=options["wall_clock"])
    raise ValueError(f"Unknown simulated venue {venue!r}: use 'binance' or 'okx'.")


async def _start_site(sim: SimExchange | OkxSimExchange, host: str,
                      port: int) -> tuple[web.AppRunner, int]:
    """Start serving ``sim``; returns the runner and the bound port."""
    runner = web.AppRunner(_app(sim), handle_signals=False, access_log=None,
                           handler_cancellation=True, shutdown_timeout=_SHUTDOWN_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


class SimExchangeServer:
    """The simulated exchange on its own event loop in a background thread.

    Use as a context manager (``with SimExchangeServer() as sim:``) or call :meth:`start` and
    :meth:`stop`. Binds 127.0.0.1; ``port=0`` picks a free port.
    """

    def __init__(self, port: int = 0, data_dir: Path | str | None = None, faults: str = "",
                 weight_limit: int = 6000, *, symbols: Iterable[str] = (),
                 now_ms: Callable[[], int] | None = None, ban_after: int = 3,
                 wall_clock_ms: Callable[[], int] | None = None,
                 venue: Venue = "binance", ws_config: WsConfig | None = None) -> None:
        """Prepare the exchange (nothing listens until :meth:`start`).

        Args:
            port: TCP port; 0 picks a free one.
            data_dir: Folder of Binance 1m kline files to replay.
            faults: Initial fault spec.
            weight_limit: Request weight allowed per minute (Binance only).
            symbols: Extra symbols to list.
            now_ms: Market clock ("now"); default is the wall clock.
            ban_after: Requests tolerated after a 429 before the 418 ban (Binance only).
            wall_clock_ms: Clock of the weight windows, bans and OKX's rate-limit windows
                (default: the real one).
            venue: ``binance`` (``/api/v3``) or ``okx`` (``/api/v5``, same market with a small
                venue basis; its requests are limited per endpoint as on OKX).
            ws_config: Knobs of the Binance market streams at :attr:`ws_url` (trade rate,
                pings, lifetime; see ``ws``).

        Raises:
            FaultSpecError: ``faults`` is not a valid spec.
            FileNotFoundError: ``data_dir`` is not a folder.
            ValueError: ``venue`` is not a known venue.
        """
        self.venue = venue
        self.exchange = _exchange(venue, data_dir=data_dir, faults=faults,
                                  weight_limit=weight_limit, symbols=symbols, now_ms=now_ms,
                                  ban_after=ban_after,
                                  wall_clock=wall_clock_ms or real_wall_clock_ms,
                                  ws_config=ws_config)
        self._requested_port = port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{_HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """What ccxt's API URL should be.

        Binance: ``base_url + "/api/v3"`` for ``urls['api']['public']``; OKX: ``base_url`` for
        ``urls['api']['rest']`` (ccxt adds ``/api/v5``).
        """
        return self.base_url if self.venue == "okx" else f"{self.base_url}/api/v3"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws``: what ccxt.pro's ``urls['api']['ws']['spot']`` should be."""
        return f"ws://{_HOST}:{self.port}/ws"

    def start(self) -> SimExchangeServer:
        """Start listening in a background thread; returns self.

        Raises:
            OSError: The port cannot be bound.
        """
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(
                    _start_site(self.exchange, _HOST, self._requested_port))
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        thread = threading.Thread(target=run, name="sim-exchange", daemon=True)
        thread.start()
        ready.wait(_START_TIMEOUT_S)
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(_START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT_S)
        self._loop = self._thread = self._runner = None

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the server's loop (state is only touched from there)."""
        if self._loop is None:
            return fn()

        async def call() -> _T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(_START_TIMEOUT_S)

    def set_faults(self, spec: str) -> None:
        """Replace the active fault spec (empty clears it).

        Raises:
            FaultSpecError: ``spec`` is not valid (checked before anything changes).
        """
        parse_faults(spec)
        self._call(lambda: self.exchange.set_faults(spec))

    def stats(self) -> dict[str, Any]:
        """Request counts per path and status, faults fired and weight used."""
        return self._call(self.exchange.stats)

    def reset(self) -> None:
        """Clear statistics, fired-fault counters and the weight budget."""
        self._call(self.exchange.reset)

    def __enter__(self) -> SimExchangeServer:
        """Start and return the server."""
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Stop the server."""
        self.stop()


async def _serve_until_signalled(sim: SimExchange | OkxSimExchange, port: int) -> None:
    runner, bound = await _start_site(sim, _HOST, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    if isinstance(sim, OkxSimExchange):
        _LOG.info("Simulated OKX spot API on http://%s:%d/api/v5", _HOST, bound)
    else:
        _LOG.info("Simulated Binance spot API on http://%s:%d/api/v3", _HOST, bound)
    try:
        await stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        _LOG.info("Simulated exchange stopped.")


def serve_forever(port: int, data_dir: Path | str | None, faults: str,
                  weight_limit: int = 6000, *, venue: Venue = "binance") -> None:
    """Serve the simulated exchange in the foreground until SIGINT or SIGTERM.

    Raises:
        FaultSpecError: ``faults`` is not a valid spec.
        FileNotFoundError: ``data_dir`` is not a folder.
        OSError: The port cannot be bound.
        ValueError: ``venue`` is not a known venue.
    """
    sim = _exchange(venue, data_dir=data_dir, faults=faults, weight_limit=weight_limit,
                    symbols=(), now_ms=None, ban_after=3, wall_clock=real_wall_clock_ms)
    asyncio.run(_serve_until_signalled(sim, port))
