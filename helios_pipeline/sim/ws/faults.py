"""WebSocket fault kinds of the simulated exchange: their parameters and their runtime state.

The spec grammar is the one of ``faults`` (``kind:key=value,...;...``); these kinds act on the
websocket side only. Times count from the moment the spec is set (``set_faults`` or
``POST /_sim/faults``)::

    ws_disconnect[:after_s=A][,every_s=P][,count=N][,code=C]
        close every open connection A seconds after the spec is set (default 0), then again
        every P seconds; count=N closes at most N connections in all (oldest first), so
        ``ws_disconnect:count=1`` drops the next one. Close code C (default 1001).
    ws_stall[:seconds=S][,after_s=A]
        for S seconds (default 5) no data frame is sent (they are dropped, as by a stuck
        gateway) while sockets, pings and replies to control frames stay alive.
    ws_burst[:ticks=N][,symbol=SYM][,after_s=A]
        trade events (of SYM, else of every symbol) are held back until N (default 100) have
        accumulated and then sent back to back; ``T`` keeps the trade time, ``E`` is the send time.
    ws_malformed[:count=N | rate=P][,seed=S]
        data frames are replaced by frames that are not JSON, truncated JSON or JSON with wrong
        field types: the next N frames, or each with probability P (seeded), or all.
    ws_refuse[:seconds=S][,after_s=A]
        new connections are refused (HTTP 503 on the upgrade) for S seconds (default 5); combine
        with ws_disconnect for a full outage.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from helios_pipeline.domain.symbols import SymbolError, normalize_symbol, to_storage_id
from helios_pipeline.sim.wire import stable_seed

WS_FAULT_KEYS: dict[str, frozenset[str]] = {
    "ws_disconnect": frozenset({"after_s", "every_s", "count", "code"}),
    "ws_stall": frozenset({"seconds", "after_s"}),
    "ws_burst": frozenset({"ticks", "symbol", "after_s"}),
    "ws_malformed": frozenset({"count", "rate", "seed"}),
    "ws_refuse": frozenset({"seconds", "after_s"}),
}
"""Each websocket fault kind and the keys it accepts."""

_GARBAGE = ("<html><body><h1>502 Bad Gateway</h1></body></html>", "\x00\x01 not json",
            "}{", "nul", "ERROR: upstream reset")


@dataclass(frozen=True)
class WsFault:
    """One websocket fault of a spec (see the module docstring for the kinds).

    Attributes:
        kind: One of :data:`WS_FAULT_KEYS`.
        text: The spec part it was parsed from.
        after_s: Delay from the moment the spec is set.
        every_s: ``ws_disconnect``: repeat period (None: once).
        count: ``ws_disconnect``: connections to close in all; ``ws_malformed``: frames.
        rate: ``ws_malformed``: probability per frame.
        seed: Seed of the RNG behind ``rate`` and the malformed variants.
        seconds: ``ws_stall``/``ws_refuse``: duration.
        ticks: ``ws_burst``: trade events per burst.
        symbol: ``ws_burst``: only this exchange id (None: every symbol).
        code: ``ws_disconnect``: websocket close code.
    """

    kind: str
    text: str
    after_s: float = 0.0
    every_s: float | None = None
    count: int | None = None
    rate: float | None = None
    seed: int | None = None
    seconds: float = 5.0
    ticks: int = 100
    symbol: str | None = None
    code: int = 1001


def _num(params: dict[str, str], key: str, low: float, high: float = float("inf"), *,
         integer: bool = False) -> float | None:
    if key not in params:
        return None
    value = params[key]
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise ValueError(f"{key}={value!r} is not a number.") from None
    if not low <= number <= high:
        raise ValueError(f"{key}={value!r} must be between {low:g} and {high:g}.")
    return number


def ws_fault(part: str, kind: str, params: dict[str, str]) -> WsFault:
    """Build the fault of one spec part whose keys were already checked.

    Raises:
        ValueError: A value is out of range or not a number (the message names it).
    """
    symbol = params.get("symbol")
    if symbol is not None:
        try:
            symbol = to_storage_id(normalize_symbol(symbol))
        except SymbolError as exc:
            raise ValueError(str(exc)) from None
    count = _num(params, "count", 1, integer=True)
    every = _num(params, "every_s", 0.05)
    seed = _num(params, "seed", 0, integer=True)
    seconds = _num(params, "seconds", 0)
    return WsFault(
        kind=kind, text=part, symbol=symbol,
        after_s=_num(params, "after_s", 0) or 0.0,
        every_s=every,
        count=None if count is None else int(count),
        rate=_num(params, "rate", 0.0, 1.0),
        seed=None if seed is None else int(seed),
        seconds=5.0 if seconds is None else seconds,
        ticks=int(_num(params, "ticks", 1, 1_000_000, integer=True) or 100),
        code=int(_num(params, "code", 1000, 4999, integer=True) or 1001),
    )


def _wrong_types(value: Any) -> Any:
    """The event with decimal strings as numbers and numbers/booleans as strings.

    Names such as ``e``, ``s`` and ``stream`` stay, so the frame still routes.
    """
    if isinstance(value, dict):
        return {k: _wrong_types(v) for k, v in value.items()}
    if isinstance(value, bool | int):
        return str(value).lower()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def malformed_frame(text: str, variant: int) -> str:
    """A broken version of data frame ``text``: variant 0 not JSON, 1 truncated, 2 wrong types."""
    if variant == 0:
        return _GARBAGE[len(text) % len(_GARBAGE)]
    if variant == 1:
        return text[: max(1, len(text) // 2)]
    return json.dumps(_wrong_types(json.loads(text)), separators=(",", ":"))


class WsFaultState:
    """The websocket faults of one spec with their runtime state (clock: monotonic seconds)."""

    def __init__(self, faults: tuple[WsFault, ...], started_s: float,
                 fired: Counter[str]) -> None:
        """Track ``faults`` of a spec set at ``started_s``; firings are counted in ``fired``."""
        self.faults = faults
        self.started_s = started_s
        self.fired = fired
        self._next_disconnect = {i: started_s + f.after_s for i, f in enumerate(faults)
                                 if f.kind == "ws_disconnect"}
        self._closed = Counter[int]()
        self._bursts = {i: started_s + f.after_s for i, f in enumerate(faults)
                        if f.kind == "ws_burst"}
        self._stalls_seen: set[int] = set()
        self._malformed_left = {i: f.count for i, f in enumerate(faults)
                                if f.kind == "ws_malformed"}
        self._rngs = {i: np.random.default_rng(f.seed if f.seed is not None else stable_seed(
            "ws_fault", i, f.text)) for i, f in enumerate(faults) if f.kind == "ws_malformed"}

    def _window(self, kind: str, now_s: float) -> WsFault | None:
        for i, fault in enumerate(self.faults):
            start = self.started_s + fault.after_s
            if fault.kind == kind and start <= now_s < start + fault.seconds:
                if kind == "ws_stall" and i not in self._stalls_seen:
                    self._stalls_seen.add(i)
                    self.fired[kind] += 1
                return fault
        return None

    def refusing(self, now_s: float) -> bool:
        """Whether new connections are refused now (counts one firing when they are)."""
        if self._window("ws_refuse", now_s) is None:
            return False
        self.fired["ws_refuse"] += 1
        return True

    def stalled(self, now_s: float) -> bool:
        """Whether data frames are held back now."""
        return self._window("ws_stall", now_s) is not None

    def stall_end(self, now_s: float) -> float | None:
        """When the stall active now ends (None when there is none)."""
        fault = self._window("ws_stall", now_s)
        return None if fault is None else self.started_s + fault.after_s + fault.seconds

    def due_disconnects(self, now_s: float) -> list[tuple[int, int | None, int]]:
        """Disconnect faults firing now: ``(fault index, max connections or None, close code)``.

        Call :meth:`closed` with the number actually closed for each.
        """
        due: list[tuple[int, int | None, int]] = []
        for i, when in list(self._next_disconnect.items()):
            fault = self.faults[i]
            if when > now_s:
                continue
            left = None if fault.count is None else fault.count - self._closed[i]
            if fault.every_s is None or (left is not None and left <= 0):
                del self._next_disconnect[i]
            else:
                self._next_disconnect[i] = max(when + fault.every_s, now_s)
            if left is None or left > 0:
                due.append((i, left, fault.code))
        return due

    def closed(self, index: int, connections: int) -> None:
        """Record that disconnect fault ``index`` closed ``connections`` connections."""
        self._closed[index] += connections
        self.fired["ws_disconnect"] += connections
        fault = self.faults[index]
        if fault.count is not None and self._closed[index] >= fault.count:
            self._next_disconnect.pop(index, None)

    def due_bursts(self, now_s: float) -> list[WsFault]:
        """Burst faults that start now (each is returned once)."""
        due = [i for i, when in self._bursts.items() if when <= now_s]
        for i in due:
            del self._bursts[i]
        return [self.faults[i] for i in due]

    def malform(self, text: str) -> str | None:
        """A malformed replacement for data frame ``text``, or None to send it as is."""
        for i, left in self._malformed_left.items():
            fault, rng = self.faults[i], self._rngs[i]
            if left is not None:
                if left <= 0:
                    continue
                self._malformed_left[i] = left - 1
            elif fault.rate is not None and not rng.random() < fault.rate:
                continue
            self.fired["ws_malformed"] += 1
            return malformed_frame(text, int(rng.integers(0, 3)))
        return None

    @property
    def active(self) -> bool:
        """Whether the spec has any websocket fault."""
        return bool(self.faults)
