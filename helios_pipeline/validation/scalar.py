"""Stateful per-point validators for the realtime path: one candle or tick at a time.

:class:`CandleValidator` and :class:`TickValidator` apply the rules of
:mod:`helios_pipeline.validation.rules` to each point as it arrives and remember what the
statistical rules need (recent closes, prices, volumes, the latest open time). Windows are kept
sorted (``bisect.insort``), so a median is an index lookup and a point costs O(window) at worst
(list insertion) with small constants; nothing scans the history.

Feed points in the order they were received: the timestamp rules and the windows are defined over
that order. The verdicts equal those of the vectorised engines (``validation.frames``) bit for bit.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal

from helios_pipeline.domain.models import MarketDataPoint, OHLCVData
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.validation.rules import (
    HARD_RULES,
    MAD_SCALE,
    PRICE_RULES,
    Detail,
    Rule,
    ValidationThresholds,
    Verdict,
    is_absent,
    is_divergent,
    to_float,
)

_CANDLE_FIELDS = ("open", "high", "low", "close", "volume")
_TICK_FIELDS = ("price", "volume", "bid", "ask")


class ValidationInputError(ValueError):
    """A point cannot be validated by this validator (wrong symbol or timeframe)."""


class SortedWindow:
    """The last ``size`` values pushed, also kept sorted so that medians are lookups.

    ``-0.0`` is stored as ``0.0`` so that a median never depends on which zero came first.
    """

    __slots__ = ("_fifo", "_size", "_sorted")

    def __init__(self, size: int) -> None:
        self._size = size
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._fifo)

    def push(self, value: float) -> None:
        """Add a finite value, dropping the oldest when the window is full."""
        value += 0.0
        insort(self._sorted, value)
        self._fifo.append(value)
        if len(self._fifo) > self._size:
            old = self._fifo.popleft()
            del self._sorted[bisect_left(self._sorted, old)]

    def median(self) -> float:
        """Lower median of the values (the middle one when the count is odd)."""
        values = self._sorted
        return values[(len(values) - 1) // 2]

    def mad(self, median: float) -> float:
        """Lower median of ``|x - median|`` over the values (median absolute deviation).

        ``median`` must be :meth:`median`. The deviations below the median (``median - x``,
        walking down) and above it (``x - median``, walking up) are two ascending runs; the
        wanted rank is found by bisecting how many of it come from the lower run, O(log n),
        with the same float subtractions a full sort of ``|x - median|`` would use.
        """
        s = self._sorted
        mid = (len(s) - 1) // 2
        need = mid + 1  # the lower median of n deviations is the (mid + 1)-th smallest
        above = len(s) - need
        lo, hi = max(0, need - above), need
        while lo < hi:
            taken = (lo + hi) // 2  # from below the median; need - taken from above it
            if taken < need and median - s[mid - taken] < s[mid + need - taken] - median:
                lo = taken + 1
            else:
                hi = taken
        lower = median - s[mid - lo + 1] if lo > 0 else -math.inf
        upper = s[mid + need - lo] - median if lo < need else -math.inf
        return max(lower, upper)


    def mad_floor(self, median: float) -> float:
        """A lower bound of :meth:`mad` in O(1) (0.0 when none is known).

        With ``mid`` the median's index and ``k = (mid + 1) // 2``, only the ``2k - 1 <= mid``
        values strictly between ``s[mid - k]`` and ``s[mid + k]`` can deviate less than those two
        do; the median deviation, the ``(mid + 1)``-th smallest, cannot.
        """
        s = self._sorted
        mid = (len(s) - 1) // 2
        k = (mid + 1) // 2
        return min(s[mid + k] - median, median - s[mid - k]) if k else 0.0


class CandleValidator:
    """Validates the candles of one symbol and timeframe in the order they are received.

    Args:
        symbol: ccxt unified symbol of every candle.
        timeframe: Candle length.
        thresholds: Rule thresholds (defaults when omitted).
        now_ms: "Now" for ``future_timestamp`` (batch: fixed); ``None`` reads the clock per point.
    """

    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe,
        thresholds: ValidationThresholds | None = None,
        now_ms: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.thresholds = (thresholds or ValidationThresholds()).for_timeframe(timeframe)
        self._now_ms = now_ms
        self._tf_ms = timeframe.ms
        t = self.thresholds
        self._ref = SortedWindow(t.reference_window)
        self._avg = SortedWindow(t.average_window)
        self._vol = SortedWindow(t.volume_window)
        self._mark: int | None = None  # latest open time of an aligned, non-future row
        self._last_close_ms: int | None = None  # open time of the latest numeric close
        self._last_close: float | None = None  # the latest numeric close

    def validate(self, candle: OHLCVData) -> Verdict:
        """Verdict for the next received candle.

        Raises:
            ValidationInputError: The candle is for another symbol or timeframe.
            ValueError: Its timestamp is naive.
        """
        if candle.symbol != self.symbol or candle.timeframe is not self.timeframe:
            raise ValidationInputError(
                f"A {candle.timeframe.value} candle of {candle.symbol!r} was given to the "
                f"validator of {self.timeframe.value} {self.symbol!r}; use one validator per "
                "symbol and timeframe."
            )
        return self.check(
            datetime_to_ms(candle.timestamp), candle.open, candle.high, candle.low, candle.close,
            candle.volume, candle.taker_buy_volume, candle.trades,
        )

    def check(
        self,
        ts_ms: int,
        open: object,
        high: object,
        low: object,
        close: object,
        volume: object,
        taker_buy_volume: object = None,
        trades: object = None,
    ) -> Verdict:
        """Verdict for the next received row given as raw values (Decimal, str, float, None).

        Args:
            ts_ms: Open time, ms epoch.
            open: Open price.
            high: High price.
            low: Low price.
            close: Close price.
            volume: Base volume.
            taker_buy_volume: Taker-buy base volume; ``None`` (or a float NaN) when not reported.
            trades: Trade count; ``None`` (or a float NaN) when not reported.
        """
        raw = (open, high, low, close, volume)
        o, h, lo, c, v = _floats(raw)
        broken: dict[str, Detail] = {}
        self._check_time(ts_ms, broken)
        tb, finite = _check_values(raw, (o, h, lo, c, v), taker_buy_volume, broken)
        if h < o or h < c or lo > o or lo > c or h < lo:
            broken[Rule.OHLC_INCONSISTENT] = _fields(_CANDLE_FIELDS[:4], raw)
        if v < 0 or tb < 0 or tb > v:
            broken[Rule.NEGATIVE_VOLUME] = f"volume={volume}, taker_buy_volume={taker_buy_volume}"
        span = (max(h, o, c, lo), min(lo, o, c, h)) if finite else _span((o, h, lo, c))
        self._check_jump(ts_ms, span, broken)
        _check_absurd(self._avg, span, self.thresholds, broken)
        _check_volume(self._vol, v, self.thresholds, broken)
        if _flat_fill((o, h, lo, c), v, self._last_close, trades):
            broken[Rule.FLAT_FILL] = f"volume={volume}, four prices at previous close " \
                                     f"{self._last_close!r}, trades={trades}"
        if math.isfinite(c):
            self._ref.push(c)
            self._avg.push(c)
            self._last_close_ms = ts_ms
            self._last_close = c
        if math.isfinite(v):
            self._vol.push(v)
        return Verdict.of(broken, self.thresholds) if broken else _CLEAN

    def _check_time(self, ts_ms: int, broken: dict[str, Detail]) -> None:
        tf = self._tf_ms
        now = self._now_ms if self._now_ms is not None else int(time.time() * 1000)
        aligned = ts_ms % tf == 0
        future = ts_ms + tf > now + self.thresholds.clock_tolerance_ms
        if not aligned:
            broken[Rule.MISALIGNED_TIMESTAMP] = f"timestamp={ts_ms} ({ts_ms % tf} ms past the grid)"
        if future:
            broken[Rule.FUTURE_TIMESTAMP] = f"timestamp={ts_ms} closes after now={now}"
        _check_order(self._mark, ts_ms, broken, duplicates=True)
        if aligned and not future and (self._mark is None or ts_ms > self._mark):
            self._mark = ts_ms

    def _check_jump(self, ts_ms: int, span: Span, broken: dict[str, Detail]) -> None:
        if not self._ref:
            return
        ref = self._ref.median()
        if ref > 0:
            last = self._last_close_ms
            contiguous = last is not None and ts_ms - last == self._tf_ms
            _judge_jump(ref, span, contiguous, self.thresholds.max_jump, broken)


class TickValidator:
    """Validates the ticker points of one symbol in the order they are received.

    Args:
        symbol: ccxt unified symbol of every point.
        thresholds: Rule thresholds (defaults when omitted).
        clock: Seconds since the epoch; the receipt time when none is given per point.
    """

    def __init__(
        self,
        symbol: str,
        thresholds: ValidationThresholds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.symbol = symbol
        self.thresholds = thresholds or ValidationThresholds()
        self._clock = clock
        t = self.thresholds
        self._ref = SortedWindow(t.reference_window)
        self._avg = SortedWindow(t.average_window)
        self._mark: int | None = None  # latest exchange time of a non-future tick
        self._last_price_ms: int | None = None

    def validate(
        self,
        point: MarketDataPoint,
        received_ms: int | None = None,
        reference_price: Decimal | None = None,
    ) -> Verdict:
        """Verdict for the next received point.

        Args:
            point: The ticker observation (its timestamp is the exchange's time).
            received_ms: When it was received (ms epoch); the clock when omitted.
            reference_price: Another venue's price for the same symbol at about the same time;
                when given, ``cross_exchange_divergence`` is checked.

        Raises:
            ValidationInputError: The point is for another symbol.
            ValueError: Its timestamp is naive.
        """
        if point.symbol != self.symbol:
            raise ValidationInputError(
                f"A point of {point.symbol!r} was given to the validator of {self.symbol!r}; use "
                "one validator per symbol."
            )
        received = received_ms if received_ms is not None else int(self._clock() * 1000)
        return self.check(datetime_to_ms(point.timestamp), received, point.price, point.volume,
                          point.bid, point.ask, reference_price)

    def check(
        self,
        ts_ms: int,
        received_ms: int,
        price: object,
        volume: object,
        bid: object,
        ask: object,
        reference_price: object = None,
    ) -> Verdict:
        """Verdict for the next received tick given as raw values; see :meth:`validate`."""
        raw = (price, volume, bid, ask)
        p, v, b, a = values = _tick_floats(raw)
        broken: dict[str, Detail] = {}
        t = self.thresholds
        self._check_time(ts_ms, received_ms, broken)
        isfinite = math.isfinite
        if isfinite(p) and isfinite(v) and isfinite(b) and isfinite(a):  # the usual tick
            span: Span = (max(p, b, a), min(p, b, a))
        else:
            bad = [n for n, x in zip(_TICK_FIELDS, values, strict=True) if not isfinite(x)]
            broken[Rule.NOT_A_NUMBER] = _fields(bad, raw, _TICK_FIELDS)
            span = _span((p, b, a))
        if p <= 0 or b <= 0 or a <= 0:
            broken[Rule.NON_POSITIVE_PRICE] = f"price={price}, bid={bid}, ask={ask}"
        if v < 0:
            broken[Rule.NEGATIVE_VOLUME] = f"volume={volume}"
        if self._ref:
            ref = self._ref.median()
            if ref > 0:
                last = self._last_price_ms
                contiguous = last is not None and 0 <= ts_ms - last <= t.tick_gap_ms
                _judge_jump(ref, span, contiguous, t.max_jump, broken)
        _check_absurd(self._avg, span, t, broken)
        if reference_price is not None and not is_absent(reference_price):
            if is_divergent(p, to_float(reference_price), t):
                broken[Rule.CROSS_EXCHANGE_DIVERGENCE] = ("price={} vs {}",
                                                          (price, reference_price))
            elif broken:
                _confirm_move(broken, reference_price)
        if isfinite(p):
            self._ref.push(p)
            self._avg.push(p)
            self._last_price_ms = ts_ms
        return Verdict.of(broken, t) if broken else _CLEAN

    def _check_time(self, ts_ms: int, received_ms: int, broken: dict[str, Detail]) -> None:
        t = self.thresholds
        future = ts_ms > received_ms + t.clock_tolerance_ms
        if future:
            broken[Rule.FUTURE_TIMESTAMP] = f"timestamp={ts_ms} after receipt at {received_ms}"
        if received_ms - ts_ms > t.stale_after_ms:
            broken[Rule.STALE] = ("timestamp={} received {} ms later", (ts_ms, received_ms - ts_ms))
        _check_order(self._mark, ts_ms, broken, duplicates=False)
        if not future and (self._mark is None or ts_ms > self._mark):
            self._mark = ts_ms


_CLEAN = Verdict.of({}, ValidationThresholds())


def _floats(raw: tuple[object, ...]) -> tuple[float, ...]:
    """``to_float`` of five values; Decimals (the usual input) take a faster path."""
    a, b, c, d, e = raw
    if type(a) is type(b) is type(c) is type(d) is type(e) is Decimal:
        try:
            return tuple(map(float, raw))  # type: ignore[arg-type]
        except ValueError:  # a signalling NaN
            pass
    return tuple(map(to_float, raw))


def _tick_floats(raw: tuple[object, ...]) -> tuple[float, float, float, float]:
    """``to_float`` of a tick's price, volume, bid and ask, fast for Decimals.

    ``float(Decimal)`` goes through the decimal's text, the costliest step of a tick's
    validation; a trade passes its price as bid and ask too, so it is converted once.
    """
    p, v, b, a = raw
    if type(p) is type(v) is type(b) is type(a) is Decimal:
        try:
            fp = float(p)
            fb = fp if b is p else float(b)
            return fp, float(v), fb, fp if a is p else float(a)
        except ValueError:  # a signalling NaN
            pass
    return to_float(p), to_float(v), to_float(b), to_float(a)


# Highest and lowest of a row's prices that are not NaN; None when every one is NaN.
Span = tuple[float, float] | None


def _span(prices: tuple[float, ...]) -> Span:
    """The :data:`Span` of prices that may hold NaN (slow path)."""
    numbers = [p for p in prices if p == p]
    return (max(numbers), min(numbers)) if numbers else None


def _check_values(
    raw: Sequence[object],
    values: Sequence[float],
    taker_raw: object,
    broken: dict[str, Detail],
) -> tuple[float, bool]:
    """``not_a_number`` and ``non_positive_price`` of a candle.

    Returns:
        The taker-buy volume as a float (NaN when absent) and whether the four prices are numbers.
    """
    o, h, lo, c, v = values
    absent = is_absent(taker_raw)
    tb = math.nan if absent else to_float(taker_raw)
    isfinite = math.isfinite
    prices_finite = isfinite(o) and isfinite(h) and isfinite(lo) and isfinite(c)
    if not (prices_finite and isfinite(v) and (absent or isfinite(tb))):
        names = (*_CANDLE_FIELDS, "taker_buy_volume")
        checked = list(zip(names, (*values, tb), strict=True))[: 5 if absent else 6]
        bad = [n for n, x in checked if not isfinite(x)]
        broken[Rule.NOT_A_NUMBER] = _fields(bad, (*raw, taker_raw), names)
    if o <= 0 or h <= 0 or lo <= 0 or c <= 0:
        broken[Rule.NON_POSITIVE_PRICE] = _fields(_CANDLE_FIELDS[:4], raw)
    return tb, prices_finite


def _check_order(
    mark: int | None, ts_ms: int, broken: dict[str, Detail], duplicates: bool
) -> None:
    if mark is None:
        return
    if duplicates and ts_ms == mark:
        broken[Rule.DUPLICATE_TIMESTAMP] = f"timestamp={ts_ms} was already received"
    elif ts_ms < mark:
        broken[Rule.OUT_OF_ORDER_TIMESTAMP] = f"timestamp={ts_ms} after {mark} was received"


def _flat_fill(
    prices: tuple[float, float, float, float], volume: float, previous: float | None,
    trades: object,
) -> bool:
    """``flat_fill``: zero volume, four prices at the previous close, no trade count of 0."""
    if previous is None or volume != 0 or any(p != previous for p in prices):
        return False
    return is_absent(trades) or to_float(trades) != 0


def _confirm_move(broken: dict[str, Detail], reference_price: object) -> None:
    """A tick that broke price rules only, at the reference venue's price, is a real move.

    Its price rules become the soft flag ``confirmed_move`` (it is kept), as a candle confirmed
    by the reference venue's candles is (``batch.confirm``).
    """
    moved = [rule for rule in broken if rule in PRICE_RULES]
    if not moved or any(rule in HARD_RULES and rule not in PRICE_RULES for rule in broken):
        return
    for rule in moved:
        del broken[rule]
    broken[Rule.CONFIRMED_MOVE] = ("{} within the divergence limit of reference price {}",
                                   (", ".join(moved), reference_price))


def _judge_jump(
    ref: float, span: Span, contiguous: bool, max_jump: float, broken: dict[str, Detail]
) -> None:
    """``price_jump`` (or ``_after_gap``) when some ``|p - ref| / ref`` exceeds ``max_jump``.

    The largest ratio comes from the highest or the lowest price: float subtraction and
    division by ``ref > 0`` are monotone, so this is the very float the per-price maximum (the
    frames engine) gives, and NaN prices take part in neither.
    """
    if span is None:
        return
    worst = max(abs(span[0] - ref), abs(span[1] - ref)) / ref
    if worst > max_jump:
        rule = Rule.PRICE_JUMP if contiguous else Rule.PRICE_JUMP_AFTER_GAP
        broken[rule] = ("jump={!r} > {!r} from reference {!r}", (worst, max_jump, ref))


def _check_absurd(
    window: SortedWindow, span: Span, t: ValidationThresholds, broken: dict[str, Detail]
) -> None:
    if span is None or len(window) < t.min_history:
        return
    average = window.median()
    if average <= 0:
        return
    limit = t.max_price_multiple * average
    if span[0] >= limit:
        broken[Rule.ABSURD_PRICE] = ("price={!r} >= {!r} ({!r} recent median)",
                                     (span[0], limit, average))


def _check_volume(
    window: SortedWindow, v: float, t: ValidationThresholds, broken: dict[str, Detail]
) -> None:
    if len(window) < t.min_history:
        return
    median = window.median()
    if not v > median:  # z <= 0 never exceeds volume_z (> 0); NaN is not an outlier
        return
    lift = MAD_SCALE * (v - median)
    floor = window.mad_floor(median)
    if floor > 0 and lift / floor <= t.volume_z:  # z = lift / mad <= lift / floor: no outlier
        return
    mad = window.mad(median)
    if mad > 0:
        z = lift / mad
        if z > t.volume_z:
            broken[Rule.VOLUME_OUTLIER] = ("volume={!r}, z={!r} > {!r}", (v, z, t.volume_z))


def _fields(
    names: Sequence[str], raw: Sequence[object], all_names: Sequence[str] = _CANDLE_FIELDS
) -> str:
    """``open=abc, close=None``: the named fields with the values as received."""
    position = {n: i for i, n in enumerate(all_names)}
    return ", ".join(f"{n}={raw[position[n]]}" for n in names)
