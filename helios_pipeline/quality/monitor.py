"""Data-quality numbers per symbol over a period, computed from plain inputs.

:class:`DataQualityMonitor` takes, per symbol (and exchange), a candle frame, the catalog's gap
records, quarantine counts by rule, latency samples and a second venue's closes, and returns a
:class:`SymbolQuality` per symbol and a :class:`QualitySummary` for all of them. It reads no files
and opens no connections: callers (Dagster assets, the CLI, research code) load the inputs.

Quality score (0-1) of a symbol, the product of four factors, each in ``[0, 1]``::

    score = completeness * validity
            * (1 - min(1, outlier_weight * outlier_share))
            * (1 - divergence_share)

- ``completeness``: candles present in the period / candles expected (``rows / expected``).
- ``validity``: mean ``validation_score`` of the rows that carry one (1.0 without that column).
- ``outlier_share``: outlier rows / rows; with the default weight 10, 1 % outliers cost 10 %.
- ``divergence_share``: minutes above the divergence threshold / minutes aligned with the second
  venue (0 without a second venue).

An empty period scores 0. Quarantined rows are not a factor of their own: rejected rows are not
stored, so they already lower ``completeness``; they raise a finding instead.

Status: ``fail`` when any finding fails (completeness below ``completeness_fail``, p99 latency
above ``latency_fail_p99_ms``, score below ``score_fail``), ``warn`` when any finding warns (any
gap, quarantined row, outlier, divergence minute, slow p99, score below ``score_warn``), else
``ok``. The summary's status is the worst symbol's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

import pandas as pd

from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms, ms_to_datetime
from helios_pipeline.quality.detectors import (
    CLOSE,
    DivergenceStats,
    GapStats,
    LatencyStats,
    OutlierStats,
    QuarantineInput,
    QuarantineStats,
    SoftFlagStats,
    compare_exchanges,
    detect_outliers,
    divergence_stats,
    gap_stats,
    latency_stats,
    open_times_ms,
    quarantine_stats,
    soft_flag_stats,
)

Status = Literal["ok", "warn", "fail"]
HeadlineValue = str | int | float


_Frame = TypeVar("_Frame", pd.DataFrame, pd.Series)
_RANK: dict[Status, int] = {"ok": 0, "warn": 1, "fail": 2}


class CatalogRecord(Protocol):
    """What the monitor reads from a catalog row (``storage.metadata.PartitionRecord`` fits)."""

    @property
    def missing_ranges(self) -> Sequence[tuple[int, int]]:
        """Missing candle open times as ``(first_ms, last_ms)`` pairs, both inclusive."""
        ...


@dataclass(frozen=True)
class QualityThresholds:
    """Limits the monitor judges against (defaults suit 1m spot candles).

    Attributes:
        divergence: ``|a/b - 1|`` above which two venues disagree (0.05 = 5 %).
        outlier_z: Robust z-score (median/MAD of the residual to the rolling median) to exceed.
        outlier_min_move: And the close must sit this far from the rolling median (0.01 = 1 %).
        outlier_window: Rows in the centred rolling median.
        outlier_weight: Score cost per unit of outlier share.
        latency_warn_p99_ms: p99 latency that warns.
        latency_fail_p99_ms: p99 latency that fails.
        completeness_fail: Completeness below which a symbol fails.
        score_warn: Score below which a symbol warns.
        score_fail: Score below which a symbol fails.
    """

    divergence: float = 0.05
    outlier_z: float = 8.0
    outlier_min_move: float = 0.01
    outlier_window: int = 31
    outlier_weight: float = 10.0
    latency_warn_p99_ms: float = 2_000.0
    latency_fail_p99_ms: float = 10_000.0
    completeness_fail: float = 0.95
    score_warn: float = 0.95
    score_fail: float = 0.80

    def __post_init__(self) -> None:
        """Reject limits that make no sense, naming the field."""
        if self.divergence <= 0:
            raise ValueError(f"divergence={self.divergence}: give a positive fraction, e.g. 0.05.")
        if self.outlier_window < 3:
            raise ValueError(f"outlier_window={self.outlier_window}: give at least 3 rows.")


@dataclass(frozen=True)
class SymbolData:
    """The inputs for one symbol on one exchange.

    Attributes:
        symbol: ccxt unified symbol.
        candles: Frame indexed by tz-aware UTC open time with at least ``close`` (Decimal or
            float); ``validation_score`` and ``anomaly_flags`` are used when present.
        exchange: ccxt exchange id, when several are monitored.
        catalog: Catalog records of the period; their missing ranges join the frame's gaps.
        quarantine: Quarantined rows by rule, or ``(timestamp_ms, rules)`` per row.
        latency_ms: Receipt time minus exchange time of observed messages, milliseconds.
        reference_closes: The same symbol's closes on a second venue, for divergence.
        reference_exchange: Name of that venue.
    """

    symbol: str
    candles: pd.DataFrame
    exchange: str | None = None
    catalog: Sequence[CatalogRecord] = ()
    quarantine: QuarantineInput = field(default_factory=dict)
    latency_ms: Sequence[float] = ()
    reference_closes: pd.Series | None = None
    reference_exchange: str | None = None



@dataclass(frozen=True)
class Finding:
    """One reason a symbol is not ``ok``; ``rule`` is stable (alerts deduplicate on it)."""

    rule: str
    level: Status
    value: float
    message: str


@dataclass(frozen=True)
class SymbolQuality:
    """Quality of one symbol (on one exchange) over a period."""

    symbol: str
    exchange: str | None
    timeframe: Timeframe
    start_ms: int
    end_ms: int
    rows: int
    expected_rows: int
    completeness: float
    gaps: GapStats
    outliers: OutlierStats
    soft_flags: SoftFlagStats
    quarantine: QuarantineStats
    latency: LatencyStats | None
    divergence: DivergenceStats | None
    score: float
    status: Status
    findings: tuple[Finding, ...]

    @property
    def key(self) -> str:
        """``exchange:symbol`` when the exchange is known, else the symbol."""
        return f"{self.exchange}:{self.symbol}" if self.exchange else self.symbol

    @property
    def reasons(self) -> tuple[str, ...]:
        """The findings' messages."""
        return tuple(f.message for f in self.findings)

    def headline(self) -> dict[str, HeadlineValue]:
        """The main numbers as flat JSON scalars (for Dagster metadata)."""
        numbers: dict[str, HeadlineValue] = {
            "symbol": self.key, "status": self.status, "score": self.score,
            "rows": self.rows, "expected_rows": self.expected_rows,
            "completeness": round(self.completeness, 6),
            "gaps": self.gaps.count, "missing_minutes": self.gaps.missing_minutes,
            "longest_gap_minutes": self.gaps.longest_minutes,
            "outliers": self.outliers.count, "soft_flagged_rows": self.soft_flags.rows,
            "quarantined_rows": self.quarantine.rows,
        }
        if self.latency is not None:
            numbers.update(latency_p50_ms=self.latency.p50_ms, latency_p95_ms=self.latency.p95_ms,
                           latency_p99_ms=self.latency.p99_ms, latency_max_ms=self.latency.max_ms)
        if self.divergence is not None:
            numbers.update(divergence_max=self.divergence.max,
                           divergence_mean=self.divergence.mean,
                           divergence_minutes_above=self.divergence.minutes_above)
        return numbers


@dataclass(frozen=True)
class QualitySummary:
    """Quality of every monitored symbol over one period."""

    start_ms: int
    end_ms: int
    timeframe: Timeframe
    generated_at: datetime
    symbols: tuple[SymbolQuality, ...]
    status: Status
    reasons: tuple[str, ...]

    def headline(self) -> dict[str, HeadlineValue]:
        """Overall numbers plus each symbol's score, as flat JSON scalars (Dagster metadata)."""
        scores = [s.score for s in self.symbols]
        numbers: dict[str, HeadlineValue] = {
            "status": self.status,
            "start": ms_to_datetime(self.start_ms).isoformat(),
            "end": ms_to_datetime(self.end_ms).isoformat(),
            "symbols": len(self.symbols),
            "rows": sum(s.rows for s in self.symbols),
            "missing_minutes": sum(s.gaps.missing_minutes for s in self.symbols),
            "quarantined_rows": sum(s.quarantine.rows for s in self.symbols),
            "outliers": sum(s.outliers.count for s in self.symbols),
            "min_score": min(scores, default=0.0),
            "mean_score": round(sum(scores) / len(scores), 4) if scores else 0.0,
        }
        numbers.update({f"score[{s.key}]": s.score for s in self.symbols})
        return numbers

    def get(self, key: str) -> SymbolQuality:
        """The result for ``key`` (``symbol`` or ``exchange:symbol``).

        Raises:
            KeyError: No monitored symbol has that key; the message lists the ones there are.
        """
        for quality in self.symbols:
            if key in (quality.key, quality.symbol):
                return quality
        known = ", ".join(s.key for s in self.symbols) or "none"
        raise KeyError(f"No quality result for {key!r}; monitored: {known}.")


class DataQualityMonitor:
    """Computes :class:`SymbolQuality` and :class:`QualitySummary` from plain inputs."""

    def __init__(
        self, thresholds: QualityThresholds | None = None, timeframe: Timeframe = Timeframe.M1
    ) -> None:
        """Create a monitor.

        Args:
            thresholds: Limits to judge against; the defaults when ``None``.
            timeframe: Candle length of the frames (sets the expected row count).
        """
        self.thresholds = thresholds or QualityThresholds()
        self.timeframe = timeframe

    def assess(
        self, inputs: Iterable[SymbolData], start: datetime, end: datetime
    ) -> QualitySummary:
        """Assess every symbol over ``[start, end)`` and combine the results.

        Raises:
            ValueError: ``start``/``end`` are naive or out of order, or an input frame is not
                indexed by tz-aware open times.
        """
        start_ms, end_ms = self._window(start, end)
        results = tuple(self._assess(data, start_ms, end_ms) for data in inputs)
        status = _worst(r.status for r in results)
        reasons = tuple(f"{r.key}: {f.message}" for r in results for f in r.findings)
        return QualitySummary(start_ms, end_ms, self.timeframe, datetime.now(UTC), results,
                              status, reasons)

    def assess_symbol(self, data: SymbolData, start: datetime, end: datetime) -> SymbolQuality:
        """Assess one symbol over ``[start, end)`` (``start`` is floored to the timeframe).

        Raises:
            ValueError: As for :meth:`assess`.
        """
        start_ms, end_ms = self._window(start, end)
        return self._assess(data, start_ms, end_ms)

    def _window(self, start: datetime, end: datetime) -> tuple[int, int]:
        start_ms = self.timeframe.floor(datetime_to_ms(start))
        end_ms = datetime_to_ms(end)
        if end_ms <= start_ms:
            raise ValueError(f"Period end {end.isoformat()} is not after start "
                             f"{start.isoformat()}: give end > start.")
        return start_ms, end_ms

    def _assess(self, data: SymbolData, start_ms: int, end_ms: int) -> SymbolQuality:
        step = self.timeframe.ms
        limits = self.thresholds
        frame = _in_window(data.candles, start_ms, end_ms, data.symbol)
        closes = _closes(frame, data.symbol)
        on_grid = {t for t in open_times_ms(frame, data.symbol).tolist()
                   if (t - start_ms) % step == 0}
        expected = -(-(end_ms - start_ms) // step)
        catalog_ranges = [r for record in data.catalog for r in record.missing_ranges]
        divergence = None
        if data.reference_closes is not None:
            reference = _in_window(data.reference_closes, start_ms, end_ms, data.symbol)
            divergence = divergence_stats(
                compare_exchanges(closes, reference, limits.divergence), self.timeframe,
                limits.divergence, data.reference_exchange)
        partial = SymbolQuality(
            symbol=data.symbol, exchange=data.exchange, timeframe=self.timeframe,
            start_ms=start_ms, end_ms=end_ms, rows=len(on_grid), expected_rows=expected,
            completeness=len(on_grid) / expected,
            gaps=gap_stats(on_grid, catalog_ranges, start_ms, end_ms, self.timeframe),
            outliers=detect_outliers(closes, limits.outlier_z, limits.outlier_min_move,
                                     limits.outlier_window),
            soft_flags=soft_flag_stats(frame), latency=latency_stats(data.latency_ms),
            quarantine=quarantine_stats(data.quarantine, start_ms, end_ms),
            divergence=divergence, score=0.0, status="ok", findings=(),
        )
        score = quality_score(partial, limits)
        findings = _findings(partial, score, limits)
        return replace(partial, score=score, status=_worst(f.level for f in findings),
                       findings=findings)


def quality_score(quality: SymbolQuality, thresholds: QualityThresholds) -> float:
    """The 0-1 score described in the module docstring, rounded to 4 places."""
    if quality.rows == 0:
        return 0.0
    validity = quality.soft_flags.mean_validation_score
    outlier_share = quality.outliers.count / quality.rows
    divergence_share = 0.0
    if quality.divergence is not None and quality.divergence.aligned_minutes:
        divergence_share = quality.divergence.minutes_above / quality.divergence.aligned_minutes
    score = (min(1.0, quality.completeness) * (1.0 if validity is None else validity)
             * (1.0 - min(1.0, thresholds.outlier_weight * outlier_share))
             * (1.0 - divergence_share))
    return round(min(1.0, max(0.0, score)), 4)


def _in_window(data: _Frame, start_ms: int, end_ms: int, name: str) -> _Frame:
    times = open_times_ms(data, name)
    return data[(times >= start_ms) & (times < end_ms)]


def _closes(frame: pd.DataFrame, name: str) -> pd.Series:
    if CLOSE not in frame.columns:
        raise ValueError(f"{name}: the candle frame has no {CLOSE!r} column; pass OHLCV candles "
                         "as CandleStore.load_frame returns them.")
    return frame[CLOSE]


def _worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__, default="ok")


def _findings(q: SymbolQuality, score: float, limits: QualityThresholds) -> tuple[Finding, ...]:
    found: list[Finding] = []
    if q.gaps.count or q.rows == 0:
        level: Status = "fail" if q.completeness < limits.completeness_fail else "warn"
        found.append(Finding("gaps", level, q.gaps.missing_minutes,
                             f"{q.gaps.missing_minutes:,} missing minutes in {q.gaps.count:,} "
                             f"gap(s), longest {q.gaps.longest_minutes:,} min; completeness "
                             f"{q.completeness:.2%}"))
    found.extend(
        Finding(f"quarantine.{rule}", "warn", n, f"{n:,} row(s) quarantined by rule {rule!r}")
        for rule, n in q.quarantine.by_rule.items()
    )
    if q.outliers.count:
        found.append(Finding("outliers", "warn", q.outliers.count,
                             f"{q.outliers.count:,} outlier close(s), largest move "
                             f"{max(abs(r.deviation) for r in q.outliers.rows):.2%}"))
    if q.divergence is not None and q.divergence.minutes_above:
        d = q.divergence
        venue = d.reference_exchange or "the second venue"
        found.append(Finding("divergence", "warn", d.max,
                             f"{d.minutes_above:,} minute(s) above {d.threshold:.1%} divergence "
                             f"from {venue} (max {d.max:.2%})"))
    found.extend(_latency_findings(q.latency, limits))
    if score < limits.score_warn:
        level = "fail" if score < limits.score_fail else "warn"
        found.append(Finding("score", level, score, f"quality score {score:.3f}"))
    return tuple(found)


def _latency_findings(latency: LatencyStats | None, limits: QualityThresholds) -> list[Finding]:
    if latency is None or latency.p99_ms <= limits.latency_warn_p99_ms:
        return []
    level: Status = "fail" if latency.p99_ms > limits.latency_fail_p99_ms else "warn"
    return [Finding("latency", level, latency.p99_ms,
                    f"p99 latency {latency.p99_ms:.0f} ms (limit "
                    f"{limits.latency_warn_p99_ms:.0f} ms)")]
