"""Where the simulated exchange's 1m klines come from: a seeded market and recorded files.

:class:`SeededMarket` invents a deterministic, realistic market for any symbol and any minute
between 1970 and 2100: a mean-reverting daily anchor walk per symbol and, inside each day, a
Brownian bridge between consecutive anchors at sub-minute resolution. Every day depends only on
``(symbol, day)``, so the bytes served never depend on the order of requests.

:class:`ReplayMarket` serves Binance public-data kline files (``SYMBOL-1m-YYYY-MM-DD.csv`` and
``SYMBOL-1m-YYYY-MM.csv.xz``) with their decimal strings untouched; timestamps are normalised to
milliseconds and recorded gaps stay gaps.

Both hand out one UTC day of 1m klines at a time as a
:class:`~helios_pipeline.sim.market.candles.KlineBlock`; both cache generated days.
"""

from __future__ import annotations

import lzma
import re
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, day_start_ms
from helios_pipeline.sim.market.candles import AnyArray, KlineBlock, int_column
from helios_pipeline.sim.market.universe import SymbolSpec, symbol_spec
from helios_pipeline.sim.wire import SCALE, stable_seed, to_units

FloatArray = npt.NDArray[np.float64]

FIRST_DAY = 0
"""First day (days since 1970-01-01) the seeded market has candles for."""
LAST_DAY = (day_start_ms(date(2100, 1, 1)) // DAY_MS) - 1
"""Last day the seeded market has candles for."""

_MINUTES = DAY_MS // MINUTE_MS
_SUBSTEPS = 6
_STEPS = _MINUTES * _SUBSTEPS
_FRACTION = np.arange(_STEPS + 1, dtype=np.float64) / _STEPS
_PHI = 0.985  # daily mean reversion of the anchor walk: stationary sd ~ 5.8 daily sds
_INT64_SAFE = 1 << 62


def _intraday_shapes() -> tuple[FloatArray, FloatArray]:
    """Volume and volatility profiles over the UTC day (Asia, Europe and US sessions)."""
    hours = (np.arange(_MINUTES, dtype=np.float64) + 0.5) / 60.0

    def bump(centre: float, width: float) -> FloatArray:
        return np.asarray(np.exp(-(((hours - centre) / width) ** 2)), dtype=np.float64)

    volume = 0.55 + 0.9 * bump(14.5, 2.2) + 0.35 * bump(1.5, 2.0) + 0.35 * bump(8.0, 2.0)
    volume /= volume.mean()
    volatility = np.sqrt(volume)
    volatility /= np.sqrt(np.mean(volatility**2))
    return volume, volatility


_VOLUME_SHAPE, _VOLATILITY_SHAPE = _intraday_shapes()


class _SymbolPath(NamedTuple):
    log_anchor: FloatArray  # log price at 00:00 of each day (one more than days)
    day_sigma: FloatArray  # intraday log-volatility of each day
    day_volume: FloatArray  # volume multiplier of each day


def _ar1(eps: FloatArray, phi: float) -> FloatArray:
    """Row-wise ``x[:, 0] = 0, x[:, i+1] = phi * x[:, i] + eps[:, i]``, vectorised in blocks.

    Within a block ``x = phi**(j+1) * x0 + phi**j * cumsum(eps / phi**i)``; blocks are short
    enough that ``phi**-j`` stays below ~e**20 and keeps the sums precise.
    """
    rows, n = eps.shape
    out = np.zeros((rows, n + 1))
    block = max(16, int(20.0 / -np.log(phi)))
    powers = phi ** np.arange(block, dtype=np.float64)
    previous = np.zeros((rows, 1))
    for start in range(0, n, block):
        chunk = eps[:, start : start + block]
        p = powers[: chunk.shape[1]]
        values = phi * p * previous + np.cumsum(chunk / p, axis=1) * p
        out[:, start + 1 : start + 1 + chunk.shape[1]] = values
        previous = values[:, -1:]
    return out


def _symbol_path(spec: SymbolSpec) -> _SymbolPath:
    days = LAST_DAY - FIRST_DAY + 1
    rng = np.random.default_rng([stable_seed("anchors", spec.symbol)])
    shocks = rng.standard_normal((3, days))
    walk, regime = _ar1(shocks[:2] * [[spec.daily_vol], [0.06]], _PHI)
    return _SymbolPath(
        log_anchor=np.log(spec.base_price) + walk,
        day_sigma=spec.daily_vol * np.exp(regime[1:]),
        day_volume=np.exp(0.35 * shocks[2] + regime[1:]),
    )


def _units(steps: AnyArray, unit: int) -> AnyArray:
    """``steps * unit`` as int64 when that cannot overflow, else as Python integers."""
    if len(steps) and int(steps.max()) * unit >= _INT64_SAFE:
        return steps.astype(object) * unit
    return steps * unit


def _times_price(units: AnyArray, price: AnyArray) -> AnyArray:
    """``units * price // SCALE`` exactly, in int64 when that cannot overflow."""
    if len(units) and int(units.max()) < _INT64_SAFE // SCALE:
        whole, frac = np.divmod(price, SCALE)
        exact: AnyArray = units * whole + units * frac // SCALE
        return exact
    return int_column((units.astype(object) * price.astype(object) // SCALE).tolist())


@dataclass(frozen=True)
class _DayPrices:
    open: AnyArray
    high: AnyArray
    low: AnyArray
    close: AnyArray


def _day_prices(rng: np.random.Generator, spec: SymbolSpec, path: _SymbolPath,
                i: int) -> _DayPrices:
    """Tick-quantised OHLC of 1440 minutes from a Brownian bridge between two anchors."""
    minute_vol = _VOLATILITY_SHAPE * np.exp(0.3 * rng.standard_normal(_MINUTES))
    minute_vol /= np.sqrt(np.mean(minute_vol**2))
    scale = np.repeat(minute_vol, _SUBSTEPS) * (path.day_sigma[i] / np.sqrt(_STEPS))
    walk = np.concatenate(([0.0], np.cumsum(rng.standard_normal(_STEPS) * scale)))
    a0, a1 = path.log_anchor[i], path.log_anchor[i + 1]
    log_price = a0 + (a1 - a0) * _FRACTION + walk - _FRACTION * walk[-1]
    ticks = np.maximum(1, np.rint(np.exp(log_price) / spec.tick)).astype(np.int64)
    grid = ticks[:-1].reshape(_MINUTES, _SUBSTEPS)
    closes = ticks[_SUBSTEPS::_SUBSTEPS]
    unit = spec.tick_units
    return _DayPrices(
        open=grid[:, 0] * unit,
        high=np.maximum(grid.max(axis=1), closes) * unit,
        low=np.minimum(grid.min(axis=1), closes) * unit,
        close=closes * unit,
    )


def _day_volumes(rng: np.random.Generator, spec: SymbolSpec, path: _SymbolPath, i: int,
                 px: _DayPrices) -> dict[str, AnyArray]:
    """Volume (lognormal, intraday pattern, busier on big moves), trades, taker and quote."""
    mid = (px.high + px.low) / (2.0 * SCALE)
    move = np.abs(np.log(px.close / px.open)) / (path.day_sigma[i] / np.sqrt(_MINUTES))
    base = spec.daily_notional * path.day_volume[i] / _MINUTES / mid
    volume = base * _VOLUME_SHAPE * rng.lognormal(0.0, 0.45, _MINUTES)
    volume *= 0.7 + 0.3 * np.minimum(move, 5.0)
    steps = np.maximum(4, np.rint(volume / spec.step)).astype(np.int64)
    trades = np.rint(steps * spec.step * mid / spec.avg_trade_notional
                     * rng.lognormal(0.0, 0.2, _MINUTES))
    trades = np.clip(trades, 4, steps).astype(np.int64)
    direction = np.sign(px.close - px.open)
    buy_share = np.clip(0.5 + 0.08 * direction + 0.1 * rng.standard_normal(_MINUTES), 0.02, 0.98)
    buy_steps = np.rint(steps * buy_share).astype(np.int64)
    vwap = (px.open + px.high + px.low + px.close) // 4
    vol_units = _units(steps, spec.step_units)
    buy_units = _units(buy_steps, spec.step_units)
    return {
        "volume": vol_units,
        "quote_volume": _times_price(vol_units, vwap),
        "trades": trades,
        "taker_base": buy_units,
        "taker_quote": _times_price(buy_units, vwap),
    }


class _Lru:
    """A small least-recently-used cache of day blocks."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._items: OrderedDict[Any, KlineBlock] = OrderedDict()

    def get(self, key: Any, make: Callable[[], KlineBlock]) -> KlineBlock:
        block = self._items.get(key)
        if block is None:
            block = make()
            self._items[key] = block
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return block


class SeededMarket:
    """Deterministic synthetic 1m klines for any symbol and any day from 1970 to 2099."""

    def __init__(self, cache_days: int = 512) -> None:
        """Create the market; up to ``cache_days`` generated days are kept in memory."""
        self._paths: dict[str, _SymbolPath] = {}
        self._days = _Lru(cache_days)

    def day(self, symbol: str, day: int) -> KlineBlock:
        """All 1440 klines of ``day`` (days since 1970-01-01) for exchange id ``symbol``.

        Raises:
            SymbolError: ``symbol`` cannot be split into base and quote.
        """
        if not FIRST_DAY <= day <= LAST_DAY:
            return KlineBlock.empty()
        return self._days.get((symbol, day), lambda: self._generate(symbol_spec(symbol), day))

    def _path(self, spec: SymbolSpec) -> _SymbolPath:
        path = self._paths.get(spec.symbol)
        if path is None:
            path = self._paths[spec.symbol] = _symbol_path(spec)
        return path

    def _generate(self, spec: SymbolSpec, day: int) -> KlineBlock:
        path = self._path(spec)
        i = day - FIRST_DAY
        rng = np.random.default_rng([stable_seed("day", spec.symbol), day])
        prices = _day_prices(rng, spec, path, i)
        open_ms = day * DAY_MS + np.arange(_MINUTES, dtype=np.int64) * MINUTE_MS
        cols: dict[str, AnyArray] = {
            "open_ms": open_ms,
            "open": prices.open,
            "high": prices.high,
            "low": prices.low,
            "close": prices.close,
            "close_ms": open_ms + (MINUTE_MS - 1),
        }
        cols.update(_day_volumes(rng, spec, path, i, prices))
        return KlineBlock(cols)


_FILE_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-1m-(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?"
    r"\.csv(?P<xz>\.xz)?$"
)
_MICROSECONDS = 10**14  # a 2025 timestamp is ~1.7e12 in ms and ~1.7e15 in us


class ReplayFormatError(ValueError):
    """A recorded kline file does not have Binance's 12-column layout."""


@dataclass(frozen=True)
class _ReplayFile:
    path: Path
    symbol: str
    first_day: int
    last_day: int
    is_month: bool


def _to_ms(stamp: int) -> int:
    return stamp // 1000 if stamp > _MICROSECONDS else stamp


def _describe(path: Path) -> _ReplayFile | None:
    match = _FILE_NAME.match(path.name)
    if match is None:
        return None
    year, month = int(match["year"]), int(match["month"])
    if match["day"]:
        first = day_start_ms(date(year, month, int(match["day"]))) // DAY_MS
        return _ReplayFile(path, match["symbol"], first, first, False)
    first = day_start_ms(date(year, month, 1)) // DAY_MS
    following = date(year + month // 12, month % 12 + 1, 1)
    return _ReplayFile(path, match["symbol"], first, day_start_ms(following) // DAY_MS - 1, True)


def _read_lines(path: Path) -> Iterable[str]:
    if path.name.endswith(".xz"):
        with lzma.open(path, "rt") as handle:
            return handle.read().splitlines()
    return path.read_text().splitlines()


class ReplayMarket:
    """Recorded Binance 1m klines from a folder of public-data files."""

    def __init__(self, folder: Path | str, cache_days: int = 512) -> None:
        """Index the kline files in ``folder`` (they are read lazily, on first use).

        Raises:
            FileNotFoundError: ``folder`` is not a directory.
        """
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"Replay folder {self.folder} does not exist or is not a "
                                    "folder of SYMBOL-1m-YYYY-MM[-DD].csv[.xz] files.")
        described = (_describe(p) for p in sorted(self.folder.iterdir()))
        # Day files before month files: on overlap the first file seen wins.
        files = sorted((f for f in described if f), key=lambda f: (f.is_month, f.path.name))
        self._files: dict[str, list[_ReplayFile]] = {}
        for f in files:
            self._files.setdefault(f.symbol, []).append(f)
        self._covered = {
            s: sorted({d for f in fs for d in range(f.first_day, f.last_day + 1)})
            for s, fs in self._files.items()
        }
        self._lines: dict[Path, dict[int, list[str]]] = {}
        self._days = _Lru(cache_days)

    @property
    def symbols(self) -> frozenset[str]:
        """Exchange ids that have recordings."""
        return frozenset(self._files)

    def next_day(self, symbol: str, day: int) -> int | None:
        """First day ``>= day`` covered by a file of ``symbol`` (None when there is none)."""
        covered = self._covered.get(symbol, [])
        i = bisect_left(covered, day)
        return covered[i] if i < len(covered) else None

    def previous_day(self, symbol: str, day: int) -> int | None:
        """Last day ``<= day`` covered by a file of ``symbol`` (None when there is none)."""
        covered = self._covered.get(symbol, [])
        i = bisect_right(covered, day)
        return covered[i - 1] if i else None

    def day(self, symbol: str, day: int) -> KlineBlock:
        """The recorded 1m klines of ``day``, deduplicated by open time, gaps kept.

        Raises:
            ReplayFormatError: A file covering the day has a malformed line.
        """
        return self._days.get((symbol, day), lambda: self._load_day(symbol, day))

    def _file_lines(self, f: _ReplayFile) -> dict[int, list[str]]:
        by_day = self._lines.get(f.path)
        if by_day is None:
            by_day = {}
            for line in _read_lines(f.path):
                head = line.split(",", 1)[0]
                if head.isdigit():  # skips blank lines and header rows
                    by_day.setdefault(_to_ms(int(head)) // DAY_MS, []).append(line)
            self._lines[f.path] = by_day
        return by_day

    def _load_day(self, symbol: str, day: int) -> KlineBlock:
        seen: dict[int, list[str]] = {}
        for f in self._files.get(symbol, []):
            if f.first_day <= day <= f.last_day:
                for line in self._file_lines(f).get(day, []):
                    fields = line.strip().split(",")
                    if len(fields) != 12:
                        raise ReplayFormatError(f"{f.path.name}: expected 12 columns, got "
                                                f"{len(fields)} in line {line[:80]!r}.")
                    seen.setdefault(_to_ms(int(fields[0])), fields)
        return _replay_block([seen[t] for t in sorted(seen)])


def _units_column(texts: list[str]) -> AnyArray:
    """Decimal strings to 1e-8 units; the common eight-place case without per-value checks."""
    if all(len(t) > 9 and t[-9] == "." for t in texts):
        try:
            return int_column([int(t.replace(".", "", 1)) for t in texts])
        except ValueError:
            pass  # e.g. a sign or a stray character: the careful parser explains it
    return int_column([to_units(t) for t in texts])


def _replay_block(records: list[list[str]]) -> KlineBlock:
    """Wire rows from CSV fields with the file's decimal strings; numbers parsed on first use."""
    if not records:
        return KlineBlock.empty()
    open_ms = [_to_ms(int(f[0])) for f in records]
    close_ms = [_to_ms(int(f[6])) for f in records]
    rows = [f'[{t},"{f[1]}","{f[2]}","{f[3]}","{f[4]}","{f[5]}",{c},"{f[7]}",{int(f[8])},'
            f'"{f[9]}","{f[10]}","{f[11]}"]'.encode()
            for t, c, f in zip(open_ms, close_ms, records, strict=True)]

    def parse() -> dict[str, AnyArray]:
        by_field = list(zip(*records, strict=True))
        cols = {"open_ms": int_column(open_ms), "close_ms": int_column(close_ms),
                "trades": int_column([int(n) for n in by_field[8]])}
        for name, index in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5),
                            ("quote_volume", 7), ("taker_base", 9), ("taker_quote", 10)):
            cols[name] = _units_column(list(by_field[index]))
        return cols

    return KlineBlock.lazy(int_column(open_ms), rows, parse)
