"""Running the stream service in the foreground: ``helios stream``'s symbol ranking and status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import ccxt

from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.feeds import make_exchange
from helios_pipeline.realtime.feeds import top_symbols as feeds_top_symbols
from helios_pipeline.realtime.health import status_line
from helios_pipeline.realtime.service import StreamService, StreamServiceError
from helios_pipeline.realtime.shards import parent_alive


async def top_symbols(exchange_id: str, base_url: str | None, count: int) -> list[str]:
    """The ``count`` USDT spot symbols with the most 24 h quote volume (``helios stream --top``).

    Raises:
        StreamServiceError: ``count`` is not positive, or the exchange cannot be asked.
    """
    if count < 1:
        raise StreamServiceError(f"--top {count}: give a number of symbols, at least 1.")
    exchange = make_exchange(exchange_id, base_url)
    try:
        return await feeds_top_symbols(exchange, count)
    except ccxt.BaseError as exc:
        raise StreamServiceError(
            f"Cannot rank the symbols of {exchange_id} at {base_url or 'its own URL'}: {exc}. "
            "Check HELIOS_EXCHANGE_URL, or pass --symbols.") from exc
    finally:
        await exchange.close()


async def run_with_status(config: StreamConfig, duration_s: float | None, every_s: float,
                          emit: Callable[[str], object], parent_pid: int | None = None
                          ) -> StreamService:
    """Run a service until stopped, emitting a status line every ``every_s`` seconds.

    Args:
        config: What to stream.
        duration_s: Stop after this long (``None``: until SIGINT/SIGTERM).
        every_s: Seconds between status lines.
        emit: Where status lines go (prefixed with the shard, ``[2of4]``, when sharded).
        parent_pid: Stop when this process is no longer the parent (a shard whose
            ``helios stream --shards`` died).

    Returns:
        The stopped service (its :meth:`StreamService.health` holds the final counters).

    Raises:
        StreamServiceError: The service could not start.
    """
    service = StreamService(config)
    prefix = f"[{config.shard_suffix.lstrip('-')}] " if config.shard_suffix else ""

    async def report() -> None:
        last = (time.monotonic(), 0)
        while True:
            await asyncio.sleep(every_s)
            health = service.health()
            now, ticks = time.monotonic(), int(str(health["ticks"]))
            emit(prefix + status_line(health, (ticks - last[1]) / max(now - last[0], 1e-9)))
            last = (now, ticks)

    async def watch_parent(pid: int) -> None:
        while parent_alive(pid):  # noqa: ASYNC110 - nothing signals a parent's death
            await asyncio.sleep(0.5)
        service.request_stop()

    helpers = [asyncio.create_task(report())]
    if parent_pid is not None:
        helpers.append(asyncio.create_task(watch_parent(parent_pid)))
    try:
        await service.run(duration_s)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    emit(prefix + status_line(service.health(), None))
    return service
