"""A Redis outage seen by a hot-tier writer: counted, logged once, never raised.

The writers of the hot tier (live candles, and the hashes of ``hash_writer``) must not stop the
stream when Redis goes away: a failed write is counted and the first failure of an outage is
logged; the log stays quiet until a write succeeds again. What to do with what was not
written (drop it, keep it for the next flush) is the writer's.
"""

from __future__ import annotations

import logging
from typing import Any

import redis


class OutageLog:
    """Runs a writer's Redis pipelines, counting failures and warning once per outage.

    Args:
        log: The writer's logger, for the outage warning.

    Attributes:
        failures: Pipelines that failed (Redis down, a timeout...).
    """

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.failures = 0
        self._down = False

    async def execute(self, pipe: Any, warning: str, *args: object) -> bool:
        """Execute ``pipe``; whether Redis took it.

        Args:
            pipe: A redis-py asyncio pipeline.
            warning: Logged (``%``-style, the error first, then ``args``) when this pipeline
                fails and the one before it did not: once per outage.
            args: The warning's other arguments.
        """
        try:
            await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self.failures += 1
            if not self._down:
                self._log.warning(warning, exc, *args)
                self._down = True
            return False
        self._down = False
        return True
