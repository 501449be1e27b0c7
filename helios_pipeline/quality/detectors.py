"""Detectors behind the quality monitor: gaps, outliers, latency, quarantine, divergence.

Each function takes plain inputs (pandas objects indexed by tz-aware UTC open time, sequences of
numbers) and returns a small frozen result; :mod:`helios_pipeline.quality.monitor` combines them
into a verdict. Price columns may hold exact ``Decimal`` objects or floats; they are converted to
float only where a ratio or a statistic is computed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

import numpy as np
import pandas as pd

from helios_pipeline.domain.gaps import count_missing, missing_ranges
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe

CLOSE = "close"
VALIDATION_SCORE = "validation_score"
ANOMALY_FLAGS = "anomaly_flags"

_MAD_TO_SIGMA = 1.4826  # scales a median absolute deviation to a normal sigma

# Rows per rule, or one ``(timestamp_ms, rules)`` item per quarantined row.
QuarantineInput = Mapping[str, int] | Iterable[tuple[int, str | Sequence[str]]]


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of exchange-to-receipt latency, milliseconds (linear interpolation)."""

    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class GapStats:
    """Missing candles in the period; ``ranges`` are inclusive open-time pairs in ms."""

    count: int
    missing_minutes: int
    longest_minutes: int
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class OutlierRow:
    """A candle whose close sits far from its neighbours (``deviation = close/reference - 1``)."""

    ts_ms: int
    close: float
    reference: float
    deviation: float
    z: float


@dataclass(frozen=True)
class OutlierStats:
    """Outlier rows found by the monitor's own detector."""

    count: int
    rows: tuple[OutlierRow, ...]


@dataclass(frozen=True)
class DivergenceWindow:
    """A run of consecutive candles above the divergence threshold (inclusive open times)."""

    start_ms: int
    end_ms: int
    minutes: int
    max_divergence: float


@dataclass(frozen=True)
class DivergenceStats:
    """How far a symbol's closes drifted from a second venue's."""

    reference_exchange: str | None
    aligned_minutes: int
    max: float
    mean: float
    minutes_above: int
    threshold: float
    windows: tuple[DivergenceWindow, ...]


@dataclass(frozen=True)
class QuarantineStats:
    """Rows quarantined in the period, total and by rule (a row may break several rules)."""

    rows: int
    by_rule: Mapping[str, int]


@dataclass(frozen=True)
class HeldMove:
    """A candle quarantined for price rules only: maybe a real move nobody has confirmed.

    Attributes:
        symbol: ccxt unified symbol.
        timestamp_ms: Open time, ms epoch.
        rules: The price rules it broke.
        fields: The offending fields as received.
        unconfirmed_by: The reference venue that did not show the move, or ``None`` when no
            reference venue was asked.
    """

    symbol: str
    timestamp_ms: int
    rules: tuple[str, ...]
    fields: Mapping[str, str]
    unconfirmed_by: str | None


@dataclass(frozen=True)
class SoftFlagStats:
    """Rows validation kept but flagged, and the mean validation score (``None`` if absent)."""

    rows: int
    by_flag: Mapping[str, int]
    mean_validation_score: float | None


def compare_exchanges(
    closes_a: pd.Series, closes_b: pd.Series, threshold: float = 0.05
) -> pd.DataFrame:
    """Align two venues' closes on timestamp and measure how far apart they are.

    Prices are kept as given (exact ``Decimal`` stays ``Decimal``); only the ratio is computed
    in float. A non-positive or missing price gives a ``NaN`` divergence, never above threshold.

    Args:
        closes_a: Closes of venue A indexed by UTC open time.
        closes_b: Closes of venue B indexed the same way.
        threshold: ``|a/b - 1|`` above which a row is flagged.

    Returns:
        Frame on the timestamps both have (inner join, sorted) with columns ``price_a``,
        ``price_b``, ``divergence`` (``|a/b - 1|``) and ``above_threshold``.

    Raises:
        ValueError: ``threshold`` is not positive, or an index has duplicate timestamps.
    """
    if threshold <= 0:
        raise ValueError(f"threshold={threshold}: give a positive fraction, e.g. 0.05.")
    for name, series in (("closes_a", closes_a), ("closes_b", closes_b)):
        if series.index.has_duplicates:
            raise ValueError(f"{name} has duplicate timestamps: drop them before comparing.")
    joined = pd.concat([closes_a.rename("price_a"), closes_b.rename("price_b")], axis=1,
                       join="inner").sort_index()
    price_a, price_b = as_float(joined["price_a"]), as_float(joined["price_b"])
    valid = (price_a > 0) & (price_b > 0)
    ratio = price_a.where(valid) / price_b.where(valid)
    joined["divergence"] = (ratio - 1.0).abs()
    joined["above_threshold"] = (joined["divergence"] > threshold).astype(bool)
    return joined


def divergence_stats(
    compared: pd.DataFrame, timeframe: Timeframe, threshold: float,
    reference_exchange: str | None = None,
) -> DivergenceStats:
    """Summarise a :func:`compare_exchanges` frame: max, mean, minutes and windows above.

    Args:
        compared: Output of :func:`compare_exchanges`.
        timeframe: Candle length of the rows (one row is this many minutes).
        threshold: The threshold ``compared`` was built with (reported, not re-applied).
        reference_exchange: Name of venue B, for messages.
    """
    divergence = compared["divergence"].dropna()
    above = compared.index[compared["above_threshold"].to_numpy(dtype=bool)]
    times = open_times_ms(pd.DataFrame(index=above), "divergence").tolist()
    windows: list[DivergenceWindow] = []
    minutes_per = timeframe.ms // MINUTE_MS
    for ts, value in zip(times, compared.loc[above, "divergence"].tolist(), strict=True):
        last = windows[-1] if windows else None
        if last is not None and ts - last.end_ms == timeframe.ms:
            windows[-1] = DivergenceWindow(last.start_ms, ts, last.minutes + minutes_per,
                                           max(last.max_divergence, float(value)))
        else:
            windows.append(DivergenceWindow(ts, ts, minutes_per, float(value)))
    return DivergenceStats(
        reference_exchange=reference_exchange, aligned_minutes=len(divergence) * minutes_per,
        max=float(divergence.max()) if len(divergence) else 0.0,
        mean=float(divergence.mean()) if len(divergence) else 0.0,
        minutes_above=len(times) * minutes_per, threshold=threshold,
        windows=tuple(windows),
    )


def detect_outliers(
    closes: pd.Series, z_limit: float = 8.0, min_move: float = 0.01, window: int = 31
) -> OutlierStats:
    """Closes far from the centred rolling median, in both robust-z and relative terms.

    A row is an outlier when ``|close - median| / (1.4826 * MAD) > z_limit`` (MAD of the
    residuals over the whole series) and ``|close / median - 1| > min_move``. The relative floor
    keeps flat, quiet series from flagging tiny ticks; the z test keeps volatile ones from
    flagging ordinary moves.

    Args:
        closes: Closes indexed by tz-aware UTC open time (Decimal or float).
        z_limit: Robust z-score to exceed.
        min_move: Relative distance from the rolling median to exceed (0.01 = 1 %).
        window: Rows in the centred rolling median.
    """
    values = as_float(closes).dropna()
    if len(values) < 3:
        return OutlierStats(0, ())
    reference = values.rolling(window, center=True, min_periods=1).median()
    residual = values - reference
    mad = float((residual - residual.median()).abs().median()) * _MAD_TO_SIGMA
    scale = max(mad, float(reference.abs().median()) * 1e-12, 1e-300)
    z = residual.abs() / scale
    deviation = values / reference - 1.0
    mask = (z > z_limit) & (deviation.abs() > min_move)
    times = open_times_ms(pd.DataFrame(index=values.index[mask.to_numpy()]), "outliers")
    rows = tuple(
        OutlierRow(int(ts), float(c), float(r), float(d), float(zz))
        for ts, c, r, d, zz in zip(times.tolist(), values[mask], reference[mask],
                                   deviation[mask], z[mask], strict=True)
    )
    return OutlierStats(len(rows), rows)


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats | None:
    """p50/p95/p99/max of latency samples (ms); ``None`` when there are none.

    Raises:
        ValueError: A sample is not a finite number.
    """
    if len(samples_ms) == 0:
        return None
    values = np.asarray(samples_ms, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("latency_ms holds NaN or infinite samples: pass finite milliseconds.")
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return LatencyStats(len(values), p50, p95, p99, float(values.max()))


def quarantine_stats(quarantine: QuarantineInput, start_ms: int, end_ms: int) -> QuarantineStats:
    """Count quarantined rows by rule; per-row items outside ``[start_ms, end_ms)`` are skipped.

    A mapping is read as rows per rule, each row breaking one rule (its total is the sum).
    """
    if isinstance(quarantine, Mapping):
        by_rule = {str(rule): int(n) for rule, n in quarantine.items() if int(n) > 0}
        return QuarantineStats(sum(by_rule.values()), dict(sorted(by_rule.items())))
    counts: Counter[str] = Counter()
    rows = 0
    for ts_ms, rules in quarantine:
        if start_ms <= ts_ms < end_ms:
            rows += 1
            counts.update([rules] if isinstance(rules, str) else rules)
    return QuarantineStats(rows, dict(sorted(counts.items())))


def soft_flag_stats(frame: pd.DataFrame) -> SoftFlagStats:
    """Rows with anomaly flags, counts by flag, and the mean ``validation_score``."""
    counts: Counter[str] = Counter()
    rows = 0
    if ANOMALY_FLAGS in frame.columns:
        for value in frame[ANOMALY_FLAGS].tolist():
            flags = parse_anomaly_flags(value)
            rows += bool(flags)
            counts.update(flags)
    mean_score = None
    if VALIDATION_SCORE in frame.columns:
        scores = pd.to_numeric(frame[VALIDATION_SCORE], errors="coerce").dropna()
        mean_score = float(scores.mean()) if len(scores) else None
    return SoftFlagStats(rows, dict(sorted(counts.items())), mean_score)


def parse_anomaly_flags(value: object) -> list[str]:
    """Flag names from one ``anomaly_flags`` cell.

    A cell may hold a list, tuple or array of names, a comma-separated string, or nothing
    (``None``, ``NaN``, ``""``).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(part) for part in value if str(part)]
    return [str(value)]


def open_times_ms(frame: pd.DataFrame | pd.Series, name: str) -> np.ndarray:
    """Open times of a frame's tz-aware index as int64 millisecond epochs.

    Raises:
        ValueError: The index is not a tz-aware DatetimeIndex; ``name`` says which input.
    """
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError(f"{name}: candles must be indexed by tz-aware UTC open times "
                         "(a DatetimeIndex with tz='UTC'), as CandleStore.load_frame returns.")
    return np.asarray(index.tz_convert(UTC).as_unit("ms").asi8, dtype=np.int64)


def gap_stats(
    present_ms: Iterable[int], extra_ranges: Iterable[Sequence[int]], start_ms: int, end_ms: int,
    timeframe: Timeframe,
) -> GapStats:
    """Gaps in ``[start_ms, end_ms)``: the open times not present, plus ``extra_ranges``.

    Args:
        present_ms: Open times of the candles there are.
        extra_ranges: Further missing ``(first_ms, last_ms)`` ranges (catalog records); clipped
            to the window and merged with the computed ones, so nothing is counted twice.
        start_ms: First expected open time.
        end_ms: End of the window, exclusive.
        timeframe: Candle length.
    """
    step = timeframe.ms
    ranges = missing_ranges(present_ms, start_ms, end_ms, step)
    ranges.extend(_clip(r, start_ms, end_ms, step) for r in extra_ranges)
    merged = _merge_ranges([r for r in ranges if r[0] <= r[1]], step)
    minutes_per = step // MINUTE_MS
    longest = max(((last - first) // step + 1 for first, last in merged), default=0)
    return GapStats(count=len(merged), missing_minutes=count_missing(merged, step) * minutes_per,
                    longest_minutes=longest * minutes_per, ranges=tuple(merged))


def as_float(values: pd.Series) -> pd.Series:
    """Float view of a price column (Decimal objects, strings or floats); unparsable is NaN."""
    if values.dtype == object:
        values = values.map(_float_or_nan)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _float_or_nan(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _clip(rng: Sequence[int], start_ms: int, end_ms: int, step: int) -> tuple[int, int]:
    # A catalog range cut to the expected open times of the window (may come out empty).
    last_open = end_ms - 1 - (end_ms - 1 - start_ms) % step
    return max(int(rng[0]), start_ms), min(int(rng[1]), last_open)


def _merge_ranges(ranges: Iterable[tuple[int, int]], step: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + step:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged

