"""Fault injection for the simulated exchange: the spec grammar, its parser and runtime state.

Grammar (whitespace around tokens is ignored, timestamps are UTC)::

    spec   := fault (";" fault)*            an empty spec means no faults
    fault  := KIND | KIND ":" param ("," param)*
    param  := key "=" value

Request faults (``latency``, ``http429``, ``ban``, ``http5xx``, ``timeout``, ``malformed``,
``truncated``, and the bulk-archive kinds ``archive_404``, ``archive_checksum``,
``archive_header``, ``archive_us``, ``archive_drift`` described in ``binance.archive``) take
``count=N`` (the next N matching requests, then used up) or ``rate=P``
(probability per matching request from a seeded RNG, ``seed=`` optional) or neither (always),
and ``path=SUBSTR`` (only requests whose path contains SUBSTR). Data faults (``missing``,
``spike``, ``broken_ohlc``, ``divergence``, ``crash``) change 1m klines permanently and take no
count, rate or path. ``crash:symbol=,at=,factor=`` (factor 0.7 by default) multiplies the low and
close of one minute by ``factor``: a real-looking crash to serve on one venue or on several.
``divergence:symbol=,start=,minutes=,factor=`` multiplies open, high, low and close of
the 1m klines in its window by ``factor`` on the venue whose spec holds it (used on the OKX
simulator to test the cross-exchange checks; there its live ticker, book and trades move too).

Websocket faults (``ws_disconnect``, ``ws_stall``, ``ws_burst``, ``ws_malformed``,
``ws_refuse``) act on the streams only; their keys and behaviour are in ``ws.faults``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Literal, cast

import numpy as np

from helios_pipeline.domain.symbols import SymbolError, normalize_symbol, to_storage_id
from helios_pipeline.domain.timeframe import MINUTE_MS, datetime_to_ms
from helios_pipeline.sim.market.candles import CandlePatch, PatchKind
from helios_pipeline.sim.wire import stable_seed
from helios_pipeline.sim.ws.faults import WS_FAULT_KEYS, WsFault, ws_fault

RequestKind = Literal["latency", "http429", "ban", "http5xx", "timeout", "malformed", "truncated",
                      "archive_404", "archive_checksum", "archive_header", "archive_us",
                      "archive_drift"]

_REQUEST_KEYS: dict[str, frozenset[str]] = {
    "latency": frozenset({"ms"}),
    "http429": frozenset({"retry_after"}),
    "ban": frozenset({"retry_after"}),
    "http5xx": frozenset({"status"}),
    "timeout": frozenset({"seconds"}),
    "malformed": frozenset(),
    "truncated": frozenset(),
    # Bulk-archive files only (``binance.archive``): decided on the ``.zip`` request.
    "archive_404": frozenset(),
    "archive_checksum": frozenset(),
    "archive_header": frozenset(),
    "archive_us": frozenset(),
    "archive_drift": frozenset(),
}
_DATA_KEYS: dict[str, frozenset[str]] = {
    "missing": frozenset({"symbol", "start", "minutes"}),
    "spike": frozenset({"symbol", "at", "factor"}),
    "broken_ohlc": frozenset({"symbol", "at"}),
    "divergence": frozenset({"symbol", "start", "minutes", "factor"}),
    "crash": frozenset({"symbol", "at", "factor"}),
}
_REQUIRED: dict[str, frozenset[str]] = {
    "missing": frozenset({"symbol", "start"}),
    "spike": frozenset({"symbol", "at"}),
    "broken_ohlc": frozenset({"symbol", "at"}),
    "divergence": frozenset({"symbol", "start", "factor"}),
    "crash": frozenset({"symbol", "at"}),
}
_WINDOW_KINDS = frozenset({"missing", "divergence"})  # start= and minutes=, not at=
_FACTOR_DEFAULTS = {"spike": "3", "crash": "0.7"}  # divergence requires its factor
_COMMON_KEYS = frozenset({"count", "rate", "seed", "path"})
ARCHIVE_PATHS = "/data/"
"""Requests the ``archive_*`` kinds apply to (the bulk archive's files)."""

REQUEST_KINDS: tuple[str, ...] = tuple(_REQUEST_KEYS)
DATA_KINDS: tuple[str, ...] = tuple(_DATA_KEYS)
WS_KINDS: tuple[str, ...] = tuple(WS_FAULT_KEYS)
KINDS: tuple[str, ...] = REQUEST_KINDS + DATA_KINDS + WS_KINDS
"""Every fault kind, in the order the docs list them."""


class FaultSpecError(ValueError):
    """A fault spec cannot be parsed; the message names the bad part and the valid kinds."""


@dataclass(frozen=True)
class RequestFault:
    """A fault that changes how the server answers matching requests.

    Attributes:
        kind: One of :data:`REQUEST_KINDS`.
        text: The spec part it was parsed from.
        path: Only requests whose path contains this substring match (None: all).
        count: Fires on the next ``count`` matching requests, then is used up.
        rate: Fires with this probability per matching request.
        seed: Seed of the RNG behind ``rate``.
        ms: ``latency``: added delay in milliseconds.
        retry_after: ``http429``/``ban``: seconds in the Retry-After header.
        status: ``http5xx``: HTTP status.
        seconds: ``timeout``: how long the request is held before it is answered.
    """

    kind: RequestKind
    text: str
    path: str | None = None
    count: int | None = None
    rate: float | None = None
    seed: int | None = None
    ms: int = 0
    retry_after: int = 1
    status: int = 503
    seconds: float = 30.0


@dataclass(frozen=True)
class DataFault:
    """A permanent change to one symbol's 1m klines opening in ``[start_ms, end_ms)``."""

    kind: PatchKind
    text: str
    symbol: str
    start_ms: int
    end_ms: int
    factor: Fraction = Fraction(1)

    def patch(self) -> CandlePatch:
        """The kline patch this fault applies."""
        return CandlePatch(self.kind, self.start_ms, self.end_ms, self.factor)


@dataclass(frozen=True)
class FaultSpec:
    """A parsed spec: request faults in spec order and data faults."""

    text: str = ""
    request_faults: tuple[RequestFault, ...] = ()
    data_faults: tuple[DataFault, ...] = ()
    ws_faults: tuple[WsFault, ...] = ()


def _fail(part: str, problem: str) -> FaultSpecError:
    return FaultSpecError(f"Bad fault {part!r}: {problem} Valid kinds: {', '.join(KINDS)}.")


def _split_params(part: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = part.partition(":")
    kind = kind.strip().lower()
    params: dict[str, str] = {}
    for item in (p for p in rest.split(",") if p.strip()) if rest.strip() else ():
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            raise _fail(part, f"expected key=value, got {item.strip()!r}.")
        if key in params:
            raise _fail(part, f"key {key!r} given twice.")
        params[key] = value
    if ":" in part and not params:
        raise _fail(part, "':' must be followed by key=value parameters.")
    return kind, params


def _number(part: str, key: str, value: str, kind: type[int] | type[float],
            low: float, high: float = float("inf")) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise _fail(part, f"{key}={value!r} is not a number.") from None
    if not low <= number <= high:
        raise _fail(part, f"{key}={value!r} must be between {low:g} and {high:g}.")
    return number


def _minute(part: str, key: str, value: str) -> int:
    """A UTC time (ISO ``2024-01-02T10:00``, naive means UTC, or epoch ms) floored to a minute."""
    if value.isdigit():
        return int(value) // MINUTE_MS * MINUTE_MS
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(part, f"{key}={value!r} is not a UTC time like 2024-01-02T10:00.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_ms(moment) // MINUTE_MS * MINUTE_MS


def _check_keys(part: str, kind: str, params: dict[str, str]) -> None:
    is_data = kind in _DATA_KEYS
    allowed = _DATA_KEYS[kind] if is_data else (
        WS_FAULT_KEYS.get(kind) or _REQUEST_KEYS[kind] | _COMMON_KEYS)
    unknown = sorted(set(params) - allowed)
    if unknown:
        extra = " (data faults are permanent: no count, rate, seed or path)" if is_data and set(
            unknown) & _COMMON_KEYS else ""
        raise _fail(part, f"unknown key(s) {', '.join(unknown)} for {kind}{extra}; valid keys: "
                          f"{', '.join(sorted(allowed)) or 'none'}.")
    missing = sorted(_REQUIRED.get(kind, frozenset()) - set(params))
    if missing:
        raise _fail(part, f"{kind} needs {', '.join(missing)}.")
    if "count" in params and "rate" in params:
        raise _fail(part, "give count= or rate=, not both.")


def _request_fault(part: str, kind: str, p: dict[str, str]) -> RequestFault:
    def num(key: str, default: float, low: float, high: float = float("inf"),
            as_int: bool = True) -> float:
        if key not in p:
            return default
        return _number(part, key, p[key], int if as_int else float, low, high)

    retry_default = 120 if kind == "ban" else 1
    return RequestFault(
        kind=cast(RequestKind, kind),
        text=part,
        path=p.get("path"),
        count=int(num("count", 0, 1)) if "count" in p else None,
        rate=num("rate", 0.0, 0.0, 1.0, as_int=False) if "rate" in p else None,
        seed=int(num("seed", 0, 0)) if "seed" in p else None,
        ms=int(num("ms", 0, 0)),
        retry_after=int(num("retry_after", retry_default, 0)),
        status=int(num("status", 503, 500, 599)),
        seconds=num("seconds", 30.0, 0.0, as_int=False),
    )


def _factor(part: str, kind: str, p: dict[str, str]) -> Fraction:
    """``factor=`` of a spike, divergence or crash (a positive number); 1 for other kinds."""
    if kind not in ("spike", "divergence", "crash"):
        return Fraction(1)
    text = p.get("factor", _FACTOR_DEFAULTS.get(kind, "1"))
    try:
        factor = Fraction(text)
    except ValueError:
        raise _fail(part, f"factor={text!r} is not a number.") from None
    if factor <= 0:
        raise _fail(part, "factor must be greater than 0.")
    return factor


def _data_fault(part: str, kind: str, p: dict[str, str]) -> DataFault:
    try:
        symbol = to_storage_id(normalize_symbol(p["symbol"]))
    except SymbolError as exc:
        raise _fail(part, str(exc)) from None
    window = kind in _WINDOW_KINDS
    start = _minute(part, "start" if window else "at", p.get("start") or p["at"])
    minutes = int(_number(part, "minutes", p.get("minutes", "1"), int, 1))
    end = start + (minutes if window else 1) * MINUTE_MS
    return DataFault(cast(PatchKind, kind), part, symbol, start, end, _factor(part, kind, p))


def _ws_fault(part: str, kind: str, p: dict[str, str]) -> WsFault:
    try:
        return ws_fault(part, kind, p)
    except ValueError as exc:
        raise _fail(part, str(exc)) from None


def parse_faults(text: str) -> FaultSpec:
    """Parse a fault spec such as ``"http429:count=2,path=klines;latency:ms=50"``.

    Raises:
        FaultSpecError: A part is malformed; the message names it and lists the valid kinds.
    """
    requests: list[RequestFault] = []
    data: list[DataFault] = []
    ws: list[WsFault] = []
    for raw in text.split(";"):
        part = raw.strip()
        if not part:
            continue
        kind, params = _split_params(part)
        if kind not in KINDS:
            raise _fail(part, f"unknown kind {kind!r}.")
        _check_keys(part, kind, params)
        if kind in WS_FAULT_KEYS:
            ws.append(_ws_fault(part, kind, params))
        elif kind in _DATA_KEYS:
            data.append(_data_fault(part, kind, params))
        else:
            requests.append(_request_fault(part, kind, params))
    return FaultSpec(text.strip(), tuple(requests), tuple(data), tuple(ws))


@dataclass
class RequestPlan:
    """What the faults decided for one request."""

    delay_s: float = 0.0
    response: RequestFault | None = None
    fired: list[str] = field(default_factory=list)


class FaultInjector:
    """A spec with its runtime state: remaining counts, per-fault RNGs and fired counters."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        """Start injecting ``spec`` (no faults when None)."""
        self.spec = spec or FaultSpec()
        self.fired: Counter[str] = Counter()
        self.started_s = time.monotonic()  # websocket faults time themselves from here
        self._remaining = [f.count for f in self.spec.request_faults]
        self._rngs = [
            np.random.default_rng(f.seed if f.seed is not None else stable_seed("fault", i,
                                                                                f.text))
            for i, f in enumerate(self.spec.request_faults)
        ]
        self._by_symbol: dict[str, list[DataFault]] = {}
        for fault in self.spec.data_faults:
            self._by_symbol.setdefault(fault.symbol, []).append(fault)

    def _fires(self, i: int, fault: RequestFault) -> bool:
        remaining = self._remaining[i]
        if remaining is not None:
            if remaining <= 0:
                return False
            self._remaining[i] = remaining - 1
            return True
        if fault.rate is not None:
            return bool(self._rngs[i].random() < fault.rate)
        return True

    def plan(self, path: str) -> RequestPlan:
        """Decide the faults for a request to ``path`` (consumes counts and RNG draws).

        Delays (``latency``, ``timeout``) add up; the first response-changing fault that fires
        decides the answer and later ones are not consulted.
        """
        plan = RequestPlan()
        for i, fault in enumerate(self.spec.request_faults):
            if fault.path is not None and fault.path not in path:
                continue
            if fault.kind.startswith("archive_") and not path.startswith(ARCHIVE_PATHS):
                continue
            delays = fault.kind in ("latency", "timeout")
            if (not delays and plan.response is not None) or not self._fires(i, fault):
                continue
            self.fired[fault.kind] += 1
            plan.fired.append(fault.kind)
            if fault.kind == "latency":
                plan.delay_s += fault.ms / 1000
            elif fault.kind == "timeout":
                plan.delay_s += fault.seconds
            else:
                plan.response = fault
        return plan

    def patches(self, symbol: str, start_ms: int, end_ms: int) -> tuple[CandlePatch, ...]:
        """Data faults of ``symbol`` touching klines that open in ``[start_ms, end_ms)``."""
        faults = self._by_symbol.get(symbol)
        if not faults:
            return ()
        return tuple(f.patch() for f in faults if f.start_ms < end_ms and f.end_ms > start_ms)
