"""Per-token request rate limits: a sliding window of recent request times, in memory."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``rate`` requests per token in any window of ``window_s`` seconds.

    Args:
        window_s: Window length; 60 makes a token's rate "per minute".
        clock: Monotonic seconds (tests may pass their own).
    """

    def __init__(self, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s={window_s}: give a positive number of seconds.")
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, rate: int) -> float | None:
        """Count one request of ``key``; ``None`` if allowed, else seconds until it would be."""
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - self.window_s:
                seen.popleft()
            if len(seen) >= rate:
                return seen[len(seen) - rate] + self.window_s - now
            seen.append(now)
            return None


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
