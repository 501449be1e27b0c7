"""The query cache: an identical call within ``ttl_s`` (1 s by default) is answered from memory.

An entry also remembers the data generation it was computed at (the catalog's modification
stamp): when new data lands in the warm tier the generation changes and the entry is not used,
however young. Hot-tier answers (latest price, live candles) can be up to ``ttl_s`` old; a
trading loop that needs every tick reads the hot tier directly or sets ``cache_ttl_s=0``.
Bounded (least recently used entries go first) and thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 1024


class QueryCache:
    """Answers kept for ``ttl_s`` seconds, keyed by the call.

    Args:
        ttl_s: How long an answer is reused; 0 turns the cache off.
        clock: Monotonic seconds (a test can pass its own).
    """

    def __init__(self, ttl_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s={ttl_s}: a cache lifetime cannot be negative.")
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T], generation: Hashable = None) -> T:
        """The cached answer for ``key`` if fresh and of the same generation, else ``compute()``."""
        if self.ttl_s == 0:
            return compute()
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now and entry[1] == generation:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[2]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self.misses += 1
            self._entries[key] = (now + self.ttl_s, generation, value)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every answer."""
        with self._lock:
            self._entries.clear()
