"""Split a batch into accepted candles and quarantine records, whatever the input holds.

:func:`validate_candles` runs the scalar candle validator over candles in the order they were
received: candles that pass every hard rule come back with ``is_validated=True``, their score and
soft flags; the others become :class:`~helios_pipeline.storage.quarantine.QuarantineRecord` with
the rules they broke and the offending values. :func:`validate_kline_rows` does the same for raw,
untrusted kline rows (``[open_ms, "o", "h", "l", "c", "v", ...]``, Binance's 12 fields or ccxt's
6), one bad row never rejecting the rest; a row that cannot even become a candle is quarantined as
``malformed_row`` (:func:`quarantine_raw`). Nothing raises for bad data.

The record type lives with its store (``storage.quarantine``, as the issue that introduced it
asks); it is the one import here from above the domain layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from helios_pipeline.domain.models import MarketDataPoint, OHLCVData
from helios_pipeline.domain.quarantine import QuarantineRecord, jsonable
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.validation.rules import Rule, ValidationThresholds, Verdict, is_absent
from helios_pipeline.validation.scalar import CandleValidator

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRICES = ("open", "high", "low", "close")
_RULE_FIELDS: Mapping[str, tuple[str, ...]] = {
    Rule.NOT_A_NUMBER: (*_PRICES, "volume", "taker_buy_volume"),
    Rule.NON_POSITIVE_PRICE: _PRICES,
    Rule.ABSURD_PRICE: _PRICES,
    Rule.PRICE_JUMP: _PRICES,
    Rule.PRICE_JUMP_AFTER_GAP: _PRICES,
    Rule.OHLC_INCONSISTENT: _PRICES,
    Rule.NEGATIVE_VOLUME: ("volume", "taker_buy_volume"),
    Rule.VOLUME_OUTLIER: ("volume",),
    Rule.FLAT_FILL: (*_PRICES, "volume", "trades"),
}
_VALIDATION_FIELDS = frozenset({"is_validated", "validation_score", "anomaly_flags"})
# Kline row positions (Binance /api/v3/klines order; ccxt rows stop after volume).
_KLINE = ("timestamp", *_PRICES, "volume", "close_time_ms", "quote_volume", "trades",
          "taker_buy_volume", "taker_buy_quote_volume", "ignore")
_CHECKED = (*_PRICES, "volume", "taker_buy_volume", "trades")
_MIN_FIELDS = 6
_MAX_ABS_MS = 253_402_300_800_000  # year 9999
_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]{1,30}\s*")


@dataclass(frozen=True)
class ValidationOutcome:
    """Accepted candles and quarantine records of one batch, each in received order.

    Attributes:
        accepted: Candles that passed every hard rule, with ``is_validated=True``,
            ``validation_score`` and ``anomaly_flags`` (the soft flags) set.
        quarantined: One record per rejected row.
    """

    accepted: list[OHLCVData]
    quarantined: list[QuarantineRecord]

    @property
    def soft_flagged(self) -> int:
        """Accepted candles that carry at least one soft flag."""
        return sum(1 for c in self.accepted if c.anomaly_flags)


def validate_candles(
    candles: Sequence[OHLCVData],
    symbol: str,
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
    source: str = "",
) -> ValidationOutcome:
    """Validate candles in the order they were received.

    A candle whose time is naive or not a whole millisecond, or that is for another symbol or
    timeframe, is quarantined (``malformed_row`` / ``misaligned_timestamp``) without reaching
    the rule windows.

    Args:
        candles: Candles as received (duplicates, disorder and bad values included).
        symbol: ccxt unified symbol of the batch.
        timeframe: Candle length of the batch.
        thresholds: Rule thresholds (defaults when omitted).
        now_ms: "Now" for ``future_timestamp``; the clock when omitted.
        source: Where the candles came from, recorded in quarantine records.
    """
    validator = CandleValidator(symbol, timeframe, thresholds, now_ms)
    kind = f"ohlcv_{timeframe.value}"
    detected = datetime.now(tz=UTC)
    accepted: list[OHLCVData] = []
    quarantined: list[QuarantineRecord] = []
    for candle in candles:
        ts_ms, problem = _open_ms(candle, symbol, timeframe)
        if problem is not None or ts_ms is None:
            rule, why = problem or (Rule.MALFORMED_ROW, "no open time")
            values = {"timestamp": candle.timestamp, rule: why}
            quarantined.append(QuarantineRecord.create(
                symbol, kind, ts_ms, (rule,), values, _candle_raw(candle), source, detected))
            continue
        verdict = validator.check(ts_ms, candle.open, candle.high, candle.low, candle.close,
                                  candle.volume, candle.taker_buy_volume, candle.trades)
        if verdict.hard:
            values = _offending(verdict, vars_of(candle))
            quarantined.append(QuarantineRecord.create(
                symbol, kind, ts_ms, verdict.rules, values, _candle_raw(candle), source, detected))
        else:
            accepted.append(_validated(candle, verdict))
    return ValidationOutcome(accepted, quarantined)


def validate_kline_rows(
    rows: object,
    symbol: str,
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
    source: str = "",
) -> ValidationOutcome:
    """Validate raw kline rows row by row; see the module docstring.

    Numbers may be decimal strings (exact), ints, or JSON floats (taken as their shortest repr,
    which is the JSON text). A row that passes every rule becomes an exact-Decimal candle.

    Args:
        rows: The decoded payload; anything that is not a list is one malformed row.
        symbol: ccxt unified symbol of the rows.
        timeframe: Candle length.
        thresholds: Rule thresholds (defaults when omitted).
        now_ms: "Now" for ``future_timestamp``; the clock when omitted.
        source: Where the rows came from, recorded in quarantine records.
    """
    validator = CandleValidator(symbol, timeframe, thresholds, now_ms)
    kind = f"ohlcv_{timeframe.value}"
    accepted: list[OHLCVData] = []
    quarantined: list[QuarantineRecord] = []
    for row in rows if isinstance(rows, list) else [rows]:
        ts_ms, parsed, problem = _row_fields(row)
        if ts_ms is None:
            quarantined.append(quarantine_raw(row, Rule.MALFORMED_ROW, source, symbol=symbol,
                                              kind=kind, detail=problem))
            continue
        verdict = validator.check(ts_ms, *(parsed.get(n) for n in _CHECKED))
        candle, problem = _row_candle(ts_ms, parsed, symbol, timeframe) if verdict.passed \
            else (None, "")
        if candle is not None:
            accepted.append(_validated(candle, verdict))
        elif problem:
            quarantined.append(quarantine_raw(row, Rule.MALFORMED_ROW, source, symbol=symbol,
                                              kind=kind, timestamp_ms=ts_ms, detail=problem))
        else:
            values = _offending(verdict, parsed.get)
            quarantined.append(QuarantineRecord.create(symbol, kind, ts_ms, verdict.rules, values,
                                                       row, source))
    return ValidationOutcome(accepted, quarantined)


def quarantine_raw(
    raw: object,
    reason: str,
    source: str,
    *,
    symbol: str,
    kind: str,
    timestamp_ms: int | None = None,
    detail: str = "",
) -> QuarantineRecord:
    """A quarantine record for a row that could not even become a candle or tick.

    Args:
        raw: The row as received (made JSON-able; nothing is dropped).
        reason: Rule name, usually ``malformed_row``.
        source: Where the row came from.
        symbol: ccxt unified symbol it was meant for.
        kind: ``ohlcv_1m``, ``ticker``, ...
        timestamp_ms: Its time when one could be read.
        detail: What was wrong, e.g. ``"has 4 fields, expected 6 to 12"``.
    """
    values = {reason: detail} if detail else {}
    return QuarantineRecord.create(symbol, kind, timestamp_ms, (reason,), values, raw, source)


def tick_record(
    point: MarketDataPoint, verdict: Verdict, source: str, received_ms: int | None = None
) -> QuarantineRecord:
    """A quarantine record for a tick that failed a hard rule (realtime path)."""
    raw = {f.name: getattr(point, f.name) for f in fields(MarketDataPoint)}
    raw["received_ms"] = received_ms
    values = {rule: verdict.details.get(rule, "") for rule in verdict.rules}
    stamp = int((point.timestamp - _EPOCH) // timedelta(milliseconds=1)) \
        if point.timestamp.tzinfo is not None else None
    return QuarantineRecord.create(point.symbol, "ticker", stamp, verdict.rules, values, raw,
                                   source)


def _open_ms(
    candle: OHLCVData, symbol: str, timeframe: Timeframe
) -> tuple[int, None] | tuple[int | None, tuple[str, str]]:
    """Exact ms open time, or why the candle cannot enter the validator."""
    moment = candle.timestamp
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        return None, (Rule.MALFORMED_ROW, f"timestamp {moment!r} is not a tz-aware datetime")
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    if candle.symbol != symbol or candle.timeframe is not timeframe:
        length = getattr(candle.timeframe, "value", candle.timeframe)
        return micros // 1000, (Rule.MALFORMED_ROW, f"a {length} candle of {candle.symbol!r} "
                                f"in the {timeframe.value} batch of {symbol!r}")
    if micros % 1000:
        return micros // 1000, (Rule.MISALIGNED_TIMESTAMP, "timestamp has a sub-millisecond part")
    return micros // 1000, None


def vars_of(candle: OHLCVData) -> Callable[[str], object]:
    """Field getter of one candle (binds the candle, unlike a lambda in a loop)."""
    def value(name: str) -> object:
        return getattr(candle, name)
    return value


def _validated(candle: OHLCVData, verdict: Verdict) -> OHLCVData:
    return replace(candle, is_validated=True, validation_score=verdict.score,
                   anomaly_flags=verdict.soft)


def _offending(verdict: Verdict, value_of: Callable[[str], object]) -> dict[str, object]:
    """Fields named by the broken rules (as received) plus each rule's failed test."""
    values: dict[str, object] = {}
    for rule in verdict.rules:
        for name in _RULE_FIELDS.get(rule, ("timestamp",)):
            value = value_of(name)
            values[name] = "" if value is None else value
        values[rule] = verdict.details.get(rule, "")
    return values


def _candle_raw(candle: OHLCVData) -> object:
    return jsonable({f.name: getattr(candle, f.name) for f in fields(OHLCVData)
                     if f.name not in _VALIDATION_FIELDS})


def _row_fields(row: object) -> tuple[int | None, dict[str, object], str]:
    """Open time and named fields of a kline row, or what is wrong with it."""
    if not isinstance(row, list | tuple):
        return None, {}, f"a kline row must be an array, got {type(row).__name__}"
    if not _MIN_FIELDS <= len(row) <= len(_KLINE):
        return None, {}, f"has {len(row)} fields, expected {_MIN_FIELDS} to {len(_KLINE)}"
    stamp = _integer(row[0])
    if stamp is None or abs(stamp) > _MAX_ABS_MS:
        return None, {}, f"open time {row[0]!r} is not a millisecond epoch integer"
    return stamp, dict(zip(_KLINE, row, strict=False)), ""


def _row_candle(
    ts_ms: int, parsed: Mapping[str, object], symbol: str, timeframe: Timeframe
) -> tuple[OHLCVData | None, str]:
    """An exact candle from a row that passed the rules, or which field cannot be exact."""
    get = parsed.get
    try:
        o, h, lo, c, v = (_exact(parsed[n], n) for n in (*_PRICES, "volume"))
        candle = OHLCVData(
            symbol=symbol, timestamp=ms_to_datetime(ts_ms), timeframe=timeframe, open=o, high=h,
            low=lo, close=c, volume=v, trades=_optional_int(get("trades"), "trades"),
            taker_buy_volume=_optional_exact(get("taker_buy_volume"), "taker_buy_volume"),
            quote_volume=_optional_exact(get("quote_volume"), "quote_volume"),
            taker_buy_quote_volume=_optional_exact(get("taker_buy_quote_volume"),
                                                   "taker_buy_quote_volume"),
            close_time_ms=_optional_int(get("close_time_ms"), "close_time_ms"),
        )
    except ValueError as exc:
        return None, str(exc)
    return candle, ""


def _exact(value: object, name: str = "value") -> Decimal:
    """Exact Decimal of a decimal string, int, Decimal or float (its shortest repr)."""
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            # Decimal() would read a list or tuple as (sign, digits, exponent): refuse them.
            raise TypeError(f"a {type(value).__name__} is not a number")
        text = repr(value) if isinstance(value, float) else value
        number = Decimal(text.strip() if isinstance(text, str) else text)
    except (TypeError, ValueError, InvalidOperation, OverflowError):
        raise ValueError(f"{name}={value!r} is not an exact decimal") from None
    if not number.is_finite():
        raise ValueError(f"{name}={value!r} is not a finite number")
    return number


def _optional_exact(value: object, name: str) -> Decimal | None:
    return None if is_absent(value) else _exact(value, name)


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    number = _integer(value)
    if number is None:
        raise ValueError(f"{name}={value!r} is not an integer")
    return number


def _integer(value: object) -> int | None:
    """An int from an int or an integer string; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    return None
