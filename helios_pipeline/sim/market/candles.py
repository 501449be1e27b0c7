"""Blocks of klines as the simulated exchange holds them: exact integer columns and wire rows.

A :class:`KlineBlock` is columnar (numpy, prices and sizes in 1e-8 units) and knows how to
aggregate itself into longer intervals, how to take data faults (:class:`CandlePatch`) and how
to encode itself into Binance's 12-element kline arrays. Encoded rows are cached so that a
1000-candle response is a ``b",".join`` of ready-made bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.sim.wire import SCALE

HOUR_MS = 60 * MINUTE_MS

INTERVAL_MS: dict[str, int] = {tf.value: tf.ms for tf in Timeframe} | {
    "3m": 3 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "2h": 2 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
}
"""Kline intervals the simulator serves (every one divides a UTC day), in milliseconds."""

AnyArray = npt.NDArray[Any]
PatchKind = Literal["missing", "spike", "broken_ohlc", "divergence", "crash"]

_ROW = ('[%d,"%d.%08d","%d.%08d","%d.%08d","%d.%08d","%d.%08d",%d,"%d.%08d",%d,'
        '"%d.%08d","%d.%08d","0"]')
_DECIMAL_FIELDS = frozenset(
    {"open", "high", "low", "close", "volume", "quote_volume", "taker_base", "taker_quote"}
)
_OVERFLOW_GUARD = 1 << 62
_CHUNK = 120


class Kline(NamedTuple):
    """One kline in wire order; prices and sizes in 1e-8 units."""

    open_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    close_ms: int
    quote_volume: int
    trades: int
    taker_base: int
    taker_quote: int

    def encode(self) -> bytes:
        """The Binance wire array for this kline."""
        return _encode_values(tuple(self))


COLUMNS: tuple[str, ...] = Kline._fields


@dataclass(frozen=True)
class CandlePatch:
    """A data fault applied to 1m klines whose open time is in ``[start_ms, end_ms)``.

    Attributes:
        kind: ``missing`` (the klines do not exist), ``spike`` (high and close multiplied by
            ``factor``), ``broken_ohlc`` (high set below open/close), ``divergence`` (open,
            high, low and close multiplied by ``factor``) or ``crash`` (low and close multiplied
            by ``factor``: a one-minute crash from the real open).
        start_ms: First affected open time.
        end_ms: End of the affected range, exclusive.
        factor: Multiplier for ``spike``, ``divergence`` and ``crash``.
    """

    kind: PatchKind
    start_ms: int
    end_ms: int
    factor: Fraction = Fraction(1)


def _encode_values(values: Sequence[int]) -> bytes:
    parts: list[int] = []
    for name, value in zip(COLUMNS, values, strict=True):
        if name in _DECIMAL_FIELDS:
            parts.extend(divmod(value, SCALE))
        else:
            parts.append(value)
    return (_ROW % tuple(parts)).encode()


def encode_rows(cols: dict[str, AnyArray]) -> list[bytes]:
    """Encode every row of a column dict into Binance kline arrays."""
    lists: list[list[int]] = []
    for name in COLUMNS:
        col = cols[name]
        if name in _DECIMAL_FIELDS:
            lists.append((col // SCALE).tolist())
            lists.append((col % SCALE).tolist())
        else:
            lists.append(col.tolist())
    row = _ROW
    return [(row % values).encode() for values in zip(*lists, strict=True)]


def _sum_groups(col: AnyArray, starts: AnyArray) -> AnyArray:
    """Per-group sums that never overflow int64 (falls back to Python integers)."""
    if col.dtype != object and len(col) and int(np.abs(col).max()) * len(col) >= _OVERFLOW_GUARD:
        col = col.astype(object)
    return np.add.reduceat(col, starts)


class KlineBlock:
    """Klines in ascending open time, as numpy columns (see :data:`COLUMNS`).

    Wire rows are encoded on demand in chunks of ``_CHUNK`` klines and cached, so a response
    only pays for the rows it sends.
    """

    __slots__ = ("_chunks", "_cols", "_open_ms", "_rows")

    def __init__(self, cols: dict[str, AnyArray], rows: list[bytes] | None = None) -> None:
        """Wrap columns (all the same length); ``rows`` are their encodings when known."""
        self._cols: dict[str, AnyArray] | Callable[[], dict[str, AnyArray]] = cols
        self._open_ms = cols["open_ms"]
        self._rows = rows
        self._chunks: dict[int, list[bytes]] = {}

    @classmethod
    def lazy(cls, open_ms: AnyArray, rows: list[bytes],
             load: Callable[[], dict[str, AnyArray]]) -> KlineBlock:
        """A block whose rows are known and whose other columns are parsed on first use."""
        block = cls({"open_ms": open_ms}, rows)
        block._cols = load
        return block

    @property
    def cols(self) -> dict[str, AnyArray]:
        """All columns by name (see :data:`COLUMNS`)."""
        if callable(self._cols):
            self._cols = self._cols()
        return self._cols

    @classmethod
    def empty(cls) -> KlineBlock:
        """A block with no klines."""
        return cls({name: np.zeros(0, dtype=np.int64) for name in COLUMNS}, [])

    @classmethod
    def from_klines(cls, klines: Iterable[Kline], rows: list[bytes] | None = None) -> KlineBlock:
        """Build a block from klines (already in ascending open time)."""
        items = list(klines)
        if not items:
            return cls.empty()
        cols = {name: int_column([k[i] for k in items]) for i, name in enumerate(COLUMNS)}
        return cls(cols, rows)

    @staticmethod
    def concat(blocks: Sequence[KlineBlock]) -> KlineBlock:
        """Blocks joined in the given order (they must not overlap)."""
        blocks = [b for b in blocks if len(b)]
        if not blocks:
            return KlineBlock.empty()
        if len(blocks) == 1:
            return blocks[0]
        cols = {name: _concat_column([b.cols[name] for b in blocks]) for name in COLUMNS}
        rows: list[bytes] | None = None
        if all(b._rows is not None for b in blocks):
            rows = [r for b in blocks for r in b.rows()]
        return KlineBlock(cols, rows)

    def __len__(self) -> int:
        """Number of klines."""
        return len(self._open_ms)

    @property
    def open_ms(self) -> AnyArray:
        """Open times (ms), ascending."""
        return self._open_ms

    def kline(self, index: int) -> Kline:
        """The kline at ``index`` with plain Python integers."""
        return Kline(*(int(self.cols[name][index]) for name in COLUMNS))

    def rows(self) -> list[bytes]:
        """All encoded wire rows, computed once."""
        if self._rows is None:
            self._rows = self.row_range(0, len(self))
        return self._rows

    def row_range(self, lo: int, hi: int) -> list[bytes]:
        """Encoded wire rows ``[lo, hi)``, encoding only the chunks that are not cached."""
        if self._rows is not None:
            return self._rows[lo:hi]
        hi = min(hi, len(self))
        if lo >= hi:
            return []
        out: list[bytes] = []
        for chunk in range(lo // _CHUNK, (hi - 1) // _CHUNK + 1):
            rows = self._chunks.get(chunk)
            if rows is None:
                part = slice(chunk * _CHUNK, (chunk + 1) * _CHUNK)
                rows = self._chunks[chunk] = encode_rows(
                    {name: col[part] for name, col in self.cols.items()})
            out.extend(rows)
        start = (lo // _CHUNK) * _CHUNK
        return out[lo - start:hi - start]

    def take(self, index: slice | AnyArray) -> KlineBlock:
        """A sub-block by slice or integer index array (keeps cached rows)."""
        cols = {name: col[index] for name, col in self.cols.items()}
        rows = None
        if self._rows is not None:
            if isinstance(index, slice):
                rows = self._rows[index]
            else:
                rows = [self._rows[i] for i in index.tolist()]
        return KlineBlock(cols, rows)

    def until(self, last_open_ms: int) -> KlineBlock:
        """The klines whose open time is ``<= last_open_ms`` (sharing encoded chunks)."""
        stop = int(np.searchsorted(self.open_ms, last_open_ms, side="right"))
        if stop == len(self):
            return self
        head = self.take(slice(0, stop))
        head._chunks = {c: rows[: stop - c * _CHUNK] for c, rows in self._chunks.items()
                        if c * _CHUNK < stop}
        return head

    def with_last(self, kline: Kline) -> KlineBlock:
        """A copy whose last kline is replaced (the still-open one), sharing other chunks."""
        last = len(self) - 1
        cols = {name: col.copy() for name, col in self.cols.items()}
        for name, value in zip(COLUMNS, kline, strict=True):
            cols[name][last] = value
        rows = None if self._rows is None else [*self._rows[:last], kline.encode()]
        block = KlineBlock(cols, rows)
        block._chunks = {c: r for c, r in self._chunks.items() if c != last // _CHUNK}
        return block

    def aggregate(self, interval_ms: int) -> KlineBlock:
        """Klines of ``interval_ms`` built from these 1m klines (gaps are skipped, not filled).

        Open is the first present 1m open, close the last close, high/low the extremes and the
        volumes and trade counts are sums. The close time is ``open + interval - 1`` unless the
        last 1m kline of the group was cut short (an outage), whose close time is kept.
        """
        n = len(self)
        if n == 0 or interval_ms == MINUTE_MS:
            return self
        c = self.cols
        bucket = c["open_ms"] // interval_ms
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], n] - 1
        opens = bucket[starts] * interval_ms
        last_close = c["close_ms"][ends]
        cut = last_close != c["open_ms"][ends] + (MINUTE_MS - 1)
        out = {
            "open_ms": opens,
            "open": c["open"][starts],
            "high": np.maximum.reduceat(c["high"], starts),
            "low": np.minimum.reduceat(c["low"], starts),
            "close": c["close"][ends],
            "close_ms": np.where(cut, last_close, opens + (interval_ms - 1)),
        }
        for name in ("volume", "quote_volume", "trades", "taker_base", "taker_quote"):
            out[name] = _sum_groups(c[name], starts)
        return KlineBlock(out)

    def patched(self, patches: Sequence[CandlePatch], tick_units: int) -> KlineBlock:
        """A copy with data faults applied; untouched rows keep their exact encodings."""
        if not patches or not len(self):
            return self
        t = self.open_ms
        keep = np.ones(len(self), dtype=bool)
        klines: dict[int, Kline] = {}
        for patch in patches:
            selected = np.flatnonzero((t >= patch.start_ms) & (t < patch.end_ms))
            if patch.kind == "missing":
                keep[selected] = False
                continue
            for i in selected.tolist():
                klines[i] = _apply(klines.get(i) or self.kline(i), patch, tick_units)
        rows = list(self.rows())
        cols = {name: col.copy() for name, col in self.cols.items()}
        for i, k in klines.items():
            rows[i] = k.encode()
            for name, value in zip(COLUMNS, k, strict=True):
                cols[name][i] = value
        block = KlineBlock(cols, rows)
        return block if bool(keep.all()) else block.take(np.flatnonzero(keep))


def _apply(k: Kline, patch: CandlePatch, tick_units: int) -> Kline:
    factor = patch.factor

    def scaled(value: int) -> int:
        raw = value * factor.numerator // factor.denominator
        return max(tick_units, raw // tick_units * tick_units)

    if patch.kind == "spike":
        return k._replace(high=scaled(k.high), close=scaled(k.close))
    if patch.kind == "divergence":
        return k._replace(open=scaled(k.open), high=scaled(k.high), low=scaled(k.low),
                          close=scaled(k.close))
    if patch.kind == "crash":
        return k._replace(low=scaled(k.low), close=scaled(k.close))
    high = max(0, min(k.open, k.close) - tick_units)
    return k._replace(high=high, low=min(k.low, high))


def int_column(values: list[int]) -> AnyArray:
    """An int64 column, or Python integers when a value does not fit in 64 bits."""
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        return np.array(values, dtype=object)


def _concat_column(parts: list[AnyArray]) -> AnyArray:
    if any(p.dtype == object for p in parts):
        return np.concatenate([p.astype(object) for p in parts])
    return np.concatenate(parts)

