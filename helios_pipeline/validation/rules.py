"""The validation rules: names, hard and soft sets, thresholds, the score and the verdict type.

This is the one place that says what a rule means. The engines (``scalar`` for the realtime
path, ``frames`` vectorised, ``schemas`` with pandera, ``expectations`` with Great Expectations)
all evaluate these rules with these thresholds and must reach the same verdict on every row.

Definitions (``tf`` = timeframe length in ms; "previous" = earlier in the order rows were
received; a value "is a number" when :func:`to_float` gives a finite float):

HARD rules (the row is quarantined):

* ``not_a_number``: open, high, low, close or volume is not a number (None, NaN, +-inf, a
  non-numeric string, a bool, beyond float64 range); or a taker-buy volume is given (not None)
  but is not a number. Ticks: price, volume, bid or ask.
* ``non_positive_price``: open, high, low or close (ticks: price, bid, ask) is ``<= 0``.
* ``absurd_price``: a price is ``>= max_price_multiple x`` the recent average, the median of the
  previous ``average_window`` closes that were numbers; ignored while fewer than
  ``min_history`` are known or when that median is ``<= 0``.
* ``price_jump``: ``|p - ref| / ref > max_jump`` for some price p, where ``ref`` is the median of
  the previous ``reference_window`` closes that were numbers (at least one is needed; ``ref > 0``)
  and the row that gave the latest of those closes is the immediately preceding candle
  (``ts - its ts == tf``). Ticks: the latest price is at most ``tick_gap_ms`` old.
* ``ohlc_inconsistent``: ``high < open``, ``high < close``, ``low > open``, ``low > close`` or
  ``high < low`` (comparisons with a non-number are false; that row is ``not_a_number`` anyway).
* ``negative_volume``: ``volume < 0``, ``taker_buy_volume < 0`` or ``taker_buy_volume > volume``.
* ``misaligned_timestamp``: ``ts % tf != 0``.
* ``duplicate_timestamp`` / ``out_of_order_timestamp``: ``ts ==`` / ``ts <`` the latest
  accepted-order time, the maximum open time of the previous rows that were aligned and not in the
  future. A repeat of an older open time is therefore out of order; a misaligned or future row
  never moves that mark, so one bad time cannot make the rows after it look out of order. Ticks
  have no duplicates (many updates share a millisecond) and only ``out_of_order_timestamp``.
* ``future_timestamp``: candles ``ts + tf > now + clock_tolerance_ms`` (not closed yet); ticks
  exchange time ``> receipt + clock_tolerance_ms``.
* ``malformed_row``: a raw row that could not become a candle at all (not a list, too few fields,
  no usable open time); set by ``validation.outcome``, never by the engines.

SOFT flags (the row is kept, flagged, and scores lower):

* ``price_jump_after_gap``: the ``price_jump`` test fails but the latest reference close is not
  from the immediately preceding candle; a jump right after a gap is flagged as such, not
  silently accepted (and not refused: the market moved while the exchange was silent).
* ``volume_outlier``: modified z-score ``0.6745 * (v - med) / MAD > volume_z`` over the previous
  ``volume_window`` volumes that were numbers (``min_history`` needed). Upper tail only: a quiet
  minute is not an anomaly. When ``MAD == 0`` (over half of the window holds one value, e.g. the
  zero-volume minutes of an illiquid pair or a new listing) the spread has no robust scale and the
  row is *not* flagged: flagging every traded minute of a mostly idle market would be noise.
* ``flat_fill``: a candle with volume ``== 0`` whose open, high, low and close all equal the
  previous close (the close of the latest earlier row whose close was a number), unless the
  exchange reports a trade count of ``0`` for it: that is the exchange saying the minute was
  quiet, while a flat zero-volume candle without a trade count is what data vendors write to
  fill an outage (synthetic, no trade behind it).
* ``stale`` (ticks): ``receipt - exchange time > stale_after_ms``.
* ``cross_exchange_divergence``: ``divergence(price, other venue's price) > max_divergence``.

Medians are of the available values when fewer than the window are known; for an even count the
*lower* median (the ``(n - 1) // 2``-th smallest) is used, so a median is always one of the
values, an exact selection that every engine reproduces bit for bit. Rule arithmetic is float64
(decisions only; stored values stay exact ``Decimal``) and every engine performs the same IEEE
operations in the same order.

Windows learn from every row whose value is a number, refused rows included (decided, not an
oversight). Medians make one bad value powerless: a lone spike cannot move the reference, so
the row after it is judged against the market, not against the spike. And a real move beyond
``max_jump`` (a crash, a listing, a re-denomination) becomes the reference after
``(reference_window + 1) // 2`` rows; a validator that learnt only from passing rows would
refuse every later price of that market for ever. The batch engines judge stored history the
same way, so a tick and its candle are judged alike.

Score: 0.0 with any hard failure, else ``1.0 - soft_penalty * len(soft)``, floored at 0.

Thresholds by timeframe: ``max_jump`` and ``average_window`` depend on the candle length
(:data:`TIMEFRAME_DEFAULTS`; the plain field is the 1m and tick value). Every candle engine
resolves them with :meth:`ValidationThresholds.for_timeframe` before judging, so all engines use
one definition; ``HELIOS_VALIDATION="max_jump@1h=0.5"`` overrides one timeframe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from enum import StrEnum

from helios_pipeline.domain.timeframe import Timeframe

MAD_SCALE = 0.6745  # modified z-score constant (Iglewicz & Hoaglin): 0.6745 = Phi^-1(0.75)


class Rule(StrEnum):
    """Every validation rule; the value is the name stored in flags and quarantine records."""

    NOT_A_NUMBER = "not_a_number"
    NON_POSITIVE_PRICE = "non_positive_price"
    ABSURD_PRICE = "absurd_price"
    PRICE_JUMP = "price_jump"
    OHLC_INCONSISTENT = "ohlc_inconsistent"
    NEGATIVE_VOLUME = "negative_volume"
    MISALIGNED_TIMESTAMP = "misaligned_timestamp"
    DUPLICATE_TIMESTAMP = "duplicate_timestamp"
    OUT_OF_ORDER_TIMESTAMP = "out_of_order_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    MALFORMED_ROW = "malformed_row"
    PRICE_JUMP_AFTER_GAP = "price_jump_after_gap"
    VOLUME_OUTLIER = "volume_outlier"
    FLAT_FILL = "flat_fill"
    STALE = "stale"
    CROSS_EXCHANGE_DIVERGENCE = "cross_exchange_divergence"
    CONFIRMED_MOVE = "confirmed_move"


HARD_RULES = frozenset({
    Rule.NOT_A_NUMBER, Rule.NON_POSITIVE_PRICE, Rule.ABSURD_PRICE, Rule.PRICE_JUMP,
    Rule.OHLC_INCONSISTENT, Rule.NEGATIVE_VOLUME, Rule.MISALIGNED_TIMESTAMP,
    Rule.DUPLICATE_TIMESTAMP, Rule.OUT_OF_ORDER_TIMESTAMP, Rule.FUTURE_TIMESTAMP,
    Rule.MALFORMED_ROW,
})
SOFT_RULES = frozenset(set(Rule) - HARD_RULES)

# The rules each engine evaluates on candle rows and on ticker rows.
# Candles are confirmed by the reference venue's candles (``batch.confirm``), after the engines.
CANDLE_RULES = tuple(r for r in Rule if r not in {
    Rule.MALFORMED_ROW, Rule.STALE, Rule.CROSS_EXCHANGE_DIVERGENCE, Rule.CONFIRMED_MOVE})
TICK_RULES = (
    Rule.NOT_A_NUMBER, Rule.NON_POSITIVE_PRICE, Rule.ABSURD_PRICE, Rule.PRICE_JUMP,
    Rule.NEGATIVE_VOLUME, Rule.OUT_OF_ORDER_TIMESTAMP, Rule.FUTURE_TIMESTAMP,
    Rule.PRICE_JUMP_AFTER_GAP, Rule.STALE, Rule.CROSS_EXCHANGE_DIVERGENCE, Rule.CONFIRMED_MOVE,
)
_ORDER: dict[str, int] = {rule.value: i for i, rule in enumerate(Rule)}

# Confirmation by a reference venue (``batch.confirm`` for candles; for ticks, the tick engines
# with a fresh ``reference_price``): the rules a real move breaks, the soft flag of a confirmed
# candle or tick, the quarantine value naming the venue that did not confirm, and how the quality
# report names quarantined price moves nobody could confirm.
PRICE_RULES = frozenset({Rule.PRICE_JUMP, Rule.ABSURD_PRICE})
CONFIRMED_MOVE = Rule.CONFIRMED_MOVE
UNCONFIRMED_BY = "unconfirmed_by"
MOVE_UNCONFIRMED = "price_move_unconfirmed"
MOVE_NOT_CHECKED = "price_move_no_reference"


class ThresholdError(ValueError):
    """A validation threshold is unknown or has a value that cannot be used."""


# Thresholds that depend on the candle length, and their values for the longer timeframes (the
# field defaults below are the 1m values, also used for ticks). Measured on the real Binance
# BTCUSDT data of the tests, resampled (docs/validation.md, test_thresholds_real_data.py): the
# largest real jump ratio is 12.6% at 1m (2020-03-12), 21.6% at 5m, 24.0% at 15m, 24.9% at 1h,
# 28.1% at 4h (all 2020-03-12) and 27.1% at 1d (2019-05); each limit is about 1.6x the largest
# real move of its timeframe, as 20% is at 1m; the test data holds too few daily candles, so 1d
# also clears the largest real daily move in the public Coinbase BTC/USD candles of the tests
# (2020-03-13: 51.4%). The average window spans an hour of 1m candles up to two and a half days
# of 1h candles; for 4h and 1d it is capped at about a week and a month, so that the "recent
# average" of ``absurd_price`` stays recent.
PER_TIMEFRAME = ("max_jump", "average_window")
TIMEFRAME_DEFAULTS: tuple[tuple[str, str, float], ...] = (
    ("5m", "max_jump", 0.35),
    ("15m", "max_jump", 0.40),
    ("1h", "max_jump", 0.40),
    ("4h", "max_jump", 0.45),
    ("4h", "average_window", 41),
    ("1d", "max_jump", 0.60),
    ("1d", "average_window", 31),
)


@dataclass(frozen=True)
class ValidationThresholds:
    """Every number the rules use; override with ``HELIOS_VALIDATION="max_jump=0.3,volume_z=5"``.

    Attributes:
        max_price_multiple: ``absurd_price`` when a price is at least this many times the average.
        average_window: Closes in the average of ``absurd_price`` (odd).
        reference_window: Closes in the reference of ``price_jump`` (odd).
        max_jump: Largest accepted ``|p - ref| / ref``.
        volume_window: Volumes in the ``volume_outlier`` median and MAD (odd).
        volume_z: Largest accepted modified z-score of a volume.
        min_history: Values needed before ``absurd_price`` and ``volume_outlier`` apply.
        clock_tolerance_ms: Clock skew allowed before a time counts as in the future.
        stale_after_ms: Tick age at receipt beyond which it is ``stale``.
        tick_gap_ms: Ticks further apart than this are "after a gap" for the jump rule.
        max_divergence: Largest accepted :func:`divergence` between two venues' prices.
        soft_penalty: Score lost per soft flag.
    """

    max_price_multiple: float = 10.0
    average_window: int = 59
    reference_window: int = 5
    max_jump: float = 0.20
    volume_window: int = 59
    # 3.5, the textbook cut-off, flags 8% of real Binance minutes (1m volume is heavy-tailed);
    # 10 flags about 1.7%: rare enough to mean something. See the README's validation notes.
    volume_z: float = 10.0
    min_history: int = 5
    clock_tolerance_ms: int = 5_000
    stale_after_ms: int = 5_000
    tick_gap_ms: int = 60_000
    max_divergence: float = 0.05
    soft_penalty: float = 0.25
    # (timeframe, field, value): the value of a PER_TIMEFRAME field for that candle length.
    by_timeframe: tuple[tuple[str, str, float], ...] = TIMEFRAME_DEFAULTS
    # The timeframe :meth:`for_timeframe` resolved these thresholds for (None: not resolved).
    resolved_for: str | None = None

    def __post_init__(self) -> None:
        """Refuse values that would make a rule meaningless, naming the field."""
        for f in fields(self):
            if f.name in _NOT_NUMBERS:
                continue
            _check_value(f.name, getattr(self, f.name), int if f.type in ("int", int) else float)
        for tf, name, value in self.by_timeframe:
            if name not in PER_TIMEFRAME:
                raise ThresholdError(f"{name}@{tf}: only {', '.join(PER_TIMEFRAME)} can be set "
                                     "per timeframe.")
            _timeframe(tf, name)
            window = name.endswith("window")
            _check_value(f"{name}@{tf}", value, int if window else float)
            if window and int(value) % 2 == 0:
                raise ThresholdError(f"{name}@{tf}={value}: must be odd (a true median).")
        for name in ("average_window", "reference_window", "volume_window"):
            if getattr(self, name) % 2 == 0:
                raise ThresholdError(f"{name}={getattr(self, name)}: must be odd (a true median).")

    def for_timeframe(self, timeframe: Timeframe) -> ValidationThresholds:
        """These thresholds with the per-timeframe values of ``timeframe`` in the plain fields.

        Every engine calls this with the timeframe of the candles it judges, so all of them use
        the same numbers; calling it again for the same timeframe changes nothing.

        Raises:
            ThresholdError: The thresholds were already resolved for another timeframe.
        """
        if self.resolved_for is not None:
            if self.resolved_for != timeframe.value:
                raise ThresholdError(
                    f"thresholds resolved for {self.resolved_for} candles were used for "
                    f"{timeframe.value} candles; pass the unresolved thresholds instead.")
            return self
        values = {name: value for tf, name, value in self.by_timeframe if tf == timeframe.value}
        if not values:
            return self
        return replace(self, **values, resolved_for=timeframe.value)  # type: ignore[arg-type]

    def value_for(self, name: str, timeframe: Timeframe) -> float:
        """One threshold as it applies to ``timeframe`` (e.g. ``max_jump`` of 1h candles)."""
        return float(getattr(self.for_timeframe(timeframe), name))

    @classmethod
    def from_spec(cls, spec: str) -> ValidationThresholds:
        """Thresholds from ``"key=value,key@tf=value"`` (keys are the field names).

        ``max_jump=0.3`` sets the 1m (and tick) value; ``max_jump@1h=0.5`` the value of 1h
        candles; per-timeframe keys are those of :data:`PER_TIMEFRAME`. Timeframes not named
        keep their defaults.

        Raises:
            ThresholdError: Unknown keys (all named), a malformed part, or an unusable value.
        """
        known = {f.name: f for f in fields(cls) if f.name not in _NOT_NUMBERS}
        values: dict[str, object] = {}
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        unknown = [key for key in (p.partition("=")[0].strip().partition("@")[0] for p in parts)
                   if key not in known]
        if unknown:
            raise ThresholdError(
                f"unknown threshold(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}."
            )
        per_tf = {(tf, name): value for tf, name, value in TIMEFRAME_DEFAULTS}
        for part in parts:
            key, sep, text = (s.strip() for s in part.partition("="))
            if not sep or not text:
                raise ThresholdError(f"{part!r}: expected key=value, e.g. max_jump=0.3.")
            name, at, tf = (s.strip() for s in key.partition("@"))
            number = _number(key, text, known[name].type in ("int", int))
            if at:
                per_tf[(_timeframe(tf, name), name)] = number
            else:
                values[name] = number
        by_tf = tuple((tf, name, value) for (tf, name), value in per_tf.items())
        return cls(**values, by_timeframe=by_tf)  # type: ignore[arg-type]


_NOT_NUMBERS = frozenset({"by_timeframe", "resolved_for"})


def _check_value(name: str, value: object, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        kind is int and not isinstance(value, int)
    ):
        raise ThresholdError(f"{name}={value!r}: expected {kind.__name__}.")
    if not math.isfinite(value) or value <= 0:
        raise ThresholdError(f"{name}={value!r}: must be a finite number above 0.")


def _timeframe(text: str, name: str) -> str:
    try:
        return Timeframe.parse(text).value
    except ValueError as exc:
        raise ThresholdError(f"{name}@{text}: {exc}") from None


def _number(key: str, text: str, integer: bool) -> int | float:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ThresholdError(f"{key}={text!r}: expected {kind}.") from None


@dataclass(frozen=True)
class Verdict:
    """The outcome of validating one row.

    Attributes:
        hard: Hard rules the row broke, in :class:`Rule` order; any means quarantine.
        soft: Soft flags, in :class:`Rule` order.
        score: 0.0 with a hard failure, else 1.0 minus the soft penalties (floor 0).
        details: Per broken rule, the offending value(s) as text (for quarantine records).
    """

    hard: tuple[str, ...]
    soft: tuple[str, ...]
    score: float
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no hard rule failed (the row may be stored)."""
        return not self.hard

    @property
    def rules(self) -> tuple[str, ...]:
        """Hard then soft rule names."""
        return self.hard + self.soft

    @classmethod
    def of(cls, broken: Mapping[str, Detail], thresholds: ValidationThresholds) -> Verdict:
        """Verdict for ``broken``: rule name -> offending value text (or a deferred format)."""
        if not broken:
            return _CLEAN
        hard: tuple[str, ...]
        soft: tuple[str, ...]
        if len(broken) == 1:  # the common case on the realtime path: no sorting
            (rule,) = broken
            hard = (rule,) if rule in HARD_RULES else ()
            soft = () if hard else (rule,)
        else:
            hard = ordered(r for r in broken if r in HARD_RULES)
            soft = ordered(r for r in broken if r not in HARD_RULES)
        return cls(hard, soft, score(len(hard), len(soft), thresholds.soft_penalty),
                   Details(broken))


# A rule's detail: text, or a ``str.format`` template and its arguments, formatted when read
# (the realtime path should not pay for formatting floats nobody looks at).
Detail = str | tuple[str, tuple[object, ...]]


class Details(Mapping[str, str]):
    """Rule name -> offending value text, formatting deferred details on access."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Detail]) -> None:
        self._raw = dict(raw)

    def __getitem__(self, rule: str) -> str:
        detail = self._raw[rule]
        return detail if isinstance(detail, str) else detail[0].format(*detail[1])

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self))


_CLEAN = Verdict((), (), 1.0, {})


def ordered(rules: Iterable[str]) -> tuple[str, ...]:
    """Rule names in :class:`Rule` order, each once (unknown names last, sorted)."""
    unique = set(rules)
    return tuple(sorted(unique, key=lambda r: (_ORDER.get(r, len(_ORDER)), r)))


def score(hard_count: int, soft_count: int, penalty: float) -> float:
    """Quality score: 0.0 with any hard failure, else ``max(0, 1 - penalty * soft_count)``."""
    if hard_count:
        return 0.0
    return max(0.0, 1.0 - penalty * soft_count)


def to_float(value: object) -> float:
    """The float64 a rule compares for ``value``; NaN when it is not a number.

    ``None``, bools, non-numeric strings, signalling NaNs and anything else unparseable give NaN;
    a value beyond float64 range gives +-inf. Decimals and decimal strings convert with correct
    rounding (the nearest double), so ``Decimal("0.1")`` and ``"0.1"`` give the same float.
    """
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    except (TypeError, ValueError, ArithmeticError):
        return math.nan


def is_absent(value: object) -> bool:
    """Whether an optional value (taker-buy volume) was not reported: ``None`` or a float NaN.

    A float column cannot tell "absent" from "NaN", so a float NaN reads as absent everywhere;
    any other non-number (``Decimal("NaN")``, ``"abc"``) is present and fails ``not_a_number``.
    """
    return value is None or (isinstance(value, float) and value != value)


def is_number(value: float) -> bool:
    """Whether a float from :func:`to_float` counts as a number (finite)."""
    return math.isfinite(value)


def lower_median_index(count: int) -> int:
    """Index in the sorted values of the median used by the rules (lower median for even n)."""
    return (count - 1) // 2


def divergence(price_a: Decimal | float, price_b: Decimal | float) -> float:
    """Relative difference of two venues' prices: ``|a - b| / min(a, b)``.

    Relative to the lower price, so the figure does not depend on which venue is ``a``; a
    non-positive or non-numeric price gives ``inf`` (maximally divergent).
    """
    a, b = to_float(price_a), to_float(price_b)
    low = min(a, b)
    if not (math.isfinite(a) and math.isfinite(b)) or low <= 0:
        return math.inf
    return abs(a - b) / low


def is_divergent(
    price_a: Decimal | float, price_b: Decimal | float, thresholds: ValidationThresholds
) -> bool:
    """Whether two venues' prices differ by more than ``thresholds.max_divergence``."""
    return divergence(price_a, price_b) > thresholds.max_divergence
