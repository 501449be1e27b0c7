"""DataQualityMonitor and its detectors on hand-built frames with known answers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe
from helios_pipeline.quality.detectors import (
    detect_outliers,
    gap_stats,
    latency_stats,
    parse_anomaly_flags,
    quarantine_stats,
)
from helios_pipeline.quality.monitor import (
    DataQualityMonitor,
    QualityThresholds,
    SymbolData,
    compare_exchanges,
)
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path

START = datetime(2024, 1, 2, tzinfo=UTC)
END = START + timedelta(days=1)
START_MS = int(START.timestamp() * 1000)
GAP = range(600, 630)  # a 30-minute gap: 10:00-10:29
OUTLIERS = {200: Decimal("1.10"), 900: Decimal("0.90")}  # two spiked closes
DIVERGENT = range(1000, 1010)  # the second venue is 6 % below for 10 minutes


def ts(minute: int) -> int:
    return START_MS + minute * MINUTE_MS


def base_close(minute: int) -> Decimal:
    """A smooth, exact price path around 100 (moves of a few cents per minute)."""
    return (Decimal(100) + Decimal(math.sin(minute / 20)) / 10).quantize(Decimal("0.00000001"))


def index_of(minutes: list[int]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([START + timedelta(minutes=m) for m in minutes], name="timestamp")


def candles() -> pd.DataFrame:
    """One day of 1m candles with a 30-minute gap, two outliers and validation columns."""
    minutes = [m for m in range(1440) if m not in GAP]
    closes = [base_close(m) * OUTLIERS.get(m, Decimal(1)) for m in minutes]
    return pd.DataFrame(
        {
            "open": closes, "high": [c + Decimal("0.05") for c in closes],
            "low": [c - Decimal("0.05") for c in closes], "close": closes,
            "volume": [Decimal("1.5")] * len(minutes),
            "validation_score": [0.5 if m in OUTLIERS else 1.0 for m in minutes],
            "anomaly_flags": [["price_spike"] if m in OUTLIERS else [] for m in minutes],
        },
        index=index_of(minutes),
    )


def reference_closes(frame: pd.DataFrame) -> pd.Series:
    """The second venue: every minute of the day, equal to venue A except the 6 % window."""
    values = {m: base_close(m) * OUTLIERS.get(m, Decimal(1)) for m in range(1440)}
    for m in DIVERGENT:
        values[m] = values[m] / Decimal("1.06")
    return pd.Series(list(values.values()), index=index_of(list(values)), name="close")


@dataclass(frozen=True)
class Record:
    """What a catalog row offers the monitor (PartitionRecord has the same attribute)."""

    missing_ranges: tuple[tuple[int, int], ...]


QUARANTINED = [(ts(600), ["ohlc_consistency"]), (ts(601), ("ohlc_consistency", "price_spike")),
               (ts(1440), "ohlc_consistency")]  # the last is outside the period


def assess(**extra: object) -> object:
    frame = candles()
    data = SymbolData(
        symbol="BTC/USDT", candles=frame, exchange="binance",
        catalog=[Record(((ts(600), ts(629)),))], quarantine=QUARANTINED,
        latency_ms=[float(v) for v in range(1, 101)], reference_closes=reference_closes(frame),
        reference_exchange="kraken", **extra,  # type: ignore[arg-type]
    )
    return DataQualityMonitor().assess_symbol(data, START, END)


def test_gap_outliers_divergence_latency_exact() -> None:
    q = assess()
    assert (q.rows, q.expected_rows) == (1410, 1440)
    assert q.completeness == pytest.approx(1410 / 1440)
    assert (q.gaps.count, q.gaps.missing_minutes, q.gaps.longest_minutes) == (1, 30, 30)
    assert q.gaps.ranges == ((ts(600), ts(629)),)

    assert q.outliers.count == 2
    assert [r.ts_ms for r in q.outliers.rows] == [ts(200), ts(900)]
    assert [round(r.deviation, 2) for r in q.outliers.rows] == [0.10, -0.10]

    d = q.divergence
    assert d is not None
    assert d.reference_exchange == "kraken"
    assert d.aligned_minutes == 1410
    assert d.minutes_above == 10
    assert d.max == pytest.approx(0.06, abs=1e-12)
    assert d.mean == pytest.approx(10 * 0.06 / 1410, abs=1e-12)
    assert [(w.start_ms, w.end_ms, w.minutes) for w in d.windows] == [(ts(1000), ts(1009), 10)]

    lat = q.latency
    assert lat is not None
    assert (lat.samples, lat.p50_ms, lat.p95_ms, lat.max_ms) == (100, 50.5, 95.05, 100.0)
    assert lat.p99_ms == pytest.approx(99.01)


def test_quarantine_soft_flags_score_and_status() -> None:
    q = assess()
    assert q.quarantine.rows == 2
    assert dict(q.quarantine.by_rule) == {"ohlc_consistency": 2, "price_spike": 1}
    assert q.soft_flags.rows == 2
    assert dict(q.soft_flags.by_flag) == {"price_spike": 2}
    assert q.soft_flags.mean_validation_score == pytest.approx(1409 / 1410)

    # score = completeness * validity * (1 - 10 * outlier_share) * (1 - divergence_share)
    expected = (1410 / 1440) * (1409 / 1410) * (1 - 10 * 2 / 1410) * (1 - 10 / 1410)
    assert q.score == round(expected, 4) == 0.9578
    assert q.status == "warn"
    assert [f.rule for f in q.findings] == [
        "gaps", "quarantine.ohlc_consistency", "quarantine.price_spike", "outliers", "divergence"]
    assert q.findings[0].message.startswith("30 missing minutes in 1 gap(s), longest 30 min")
    assert all(f.level == "warn" for f in q.findings)


def test_headline_is_flat_json() -> None:
    q = assess()
    head = q.headline()
    assert json.loads(json.dumps(head)) == head
    assert head["symbol"] == "binance:BTC/USDT"
    assert head["missing_minutes"] == 30
    assert head["outliers"] == 2
    assert head["quarantined_rows"] == 2
    assert head["latency_p95_ms"] == 95.05
    assert head["divergence_minutes_above"] == 10


def test_summary_takes_worst_status_and_lists_reasons() -> None:
    frame = candles()
    empty = frame.iloc[0:0]
    summary = DataQualityMonitor().assess(
        [SymbolData("BTC/USDT", frame), SymbolData("ETH/USDT", empty)], START, END)
    assert summary.status == "fail"
    eth = summary.get("ETH/USDT")
    assert (eth.rows, eth.score, eth.status) == (0, 0.0, "fail")
    assert eth.gaps.missing_minutes == 1440
    assert {f.rule for f in eth.findings} == {"gaps", "score"}
    assert summary.get("BTC/USDT").status == "warn"
    assert any(r.startswith("ETH/USDT: 1,440 missing minutes") for r in summary.reasons)
    head = summary.headline()
    assert head["rows"] == 1410
    assert head["missing_minutes"] == 1470
    assert head["min_score"] == 0.0
    assert head["score[ETH/USDT]"] == 0.0
    with pytest.raises(KeyError, match="monitored: BTC/USDT, ETH/USDT"):
        summary.get("SOL/USDT")


def test_catalog_ranges_merge_without_double_counting() -> None:
    present = [ts(m) for m in range(60) if m not in range(10, 20)]
    stats = gap_stats(present, [(ts(15), ts(25)), (ts(50), ts(200))], ts(0), ts(60),
                      Timeframe.M1)
    # 10-19 from the data, 15-25 from the catalog -> one gap 10-25; 50-200 clipped to 50-59.
    assert stats.ranges == ((ts(10), ts(25)), (ts(50), ts(59)))
    assert (stats.count, stats.missing_minutes, stats.longest_minutes) == (2, 26, 16)


def test_compare_exchanges_keeps_decimals_and_aligns() -> None:
    a = pd.Series([Decimal("100.00000001"), Decimal("106"), Decimal("100")],
                  index=index_of([0, 1, 2]))
    b = pd.Series([100.0, 100.0, 0.0, 100.0], index=index_of([0, 1, 2, 3]))
    out = compare_exchanges(a, b, threshold=0.05)
    assert list(out.columns) == ["price_a", "price_b", "divergence", "above_threshold"]
    assert len(out) == 3  # minute 3 only exists on venue B
    assert out["price_a"].iloc[0] == Decimal("100.00000001")
    assert isinstance(out["price_a"].iloc[0], Decimal)
    assert out["divergence"].iloc[1] == pytest.approx(0.06)
    assert out["above_threshold"].tolist() == [False, True, False]
    assert math.isnan(out["divergence"].iloc[2])  # a zero price is not a divergence of 100 %
    with pytest.raises(ValueError, match="threshold=0"):
        compare_exchanges(a, b, threshold=0)


def test_outlier_detector_ignores_a_volatile_but_clean_series() -> None:
    minutes = list(range(500))
    closes = pd.Series([100 * (1 + 0.02 * math.sin(m / 3)) for m in minutes],
                       index=index_of(minutes))
    assert detect_outliers(closes).count == 0
    closes.iloc[250] *= 1.5
    found = detect_outliers(closes)
    assert [r.ts_ms for r in found.rows] == [ts(250)]


def test_small_helpers() -> None:
    assert latency_stats([]) is None
    with pytest.raises(ValueError, match="latency_ms"):
        latency_stats([1.0, float("nan")])
    assert quarantine_stats({"ohlc": 3, "spike": 0}, 0, 1).by_rule == {"ohlc": 3}
    assert parse_anomaly_flags("a, b,") == ["a", "b"]
    assert parse_anomaly_flags(None) == parse_anomaly_flags(float("nan")) == []
    assert parse_anomaly_flags(("x",)) == ["x"]


def test_bad_inputs_name_the_problem() -> None:
    naive = candles().tz_localize(None)
    with pytest.raises(ValueError, match="BTC/USDT: candles must be indexed by tz-aware"):
        DataQualityMonitor().assess_symbol(SymbolData("BTC/USDT", naive), START, END)
    with pytest.raises(ValueError, match="no 'close' column"):
        DataQualityMonitor().assess_symbol(
            SymbolData("BTC/USDT", candles().drop(columns="close")), START, END)
    with pytest.raises(ValueError, match="give end > start"):
        DataQualityMonitor().assess([], END, START)
    with pytest.raises(ValueError, match="outlier_window=2"):
        QualityThresholds(outlier_window=2)


def test_real_store_and_catalog_feed_the_monitor(tmp_path: Path) -> None:
    day = START.date()
    rows = [
        OHLCVData("BTC/USDT", START + timedelta(minutes=m), Timeframe.M1, base_close(m),
                  base_close(m) + 1, base_close(m) - 1, base_close(m), Decimal("2.5"), 10, None)
        for m in range(1440) if m not in GAP
    ]
    store = CandleStore(tmp_path)
    catalog = MetadataStore(metadata_path(tmp_path))
    catalog.record_partition("binance", "BTC/USDT", Timeframe.M1, day,
                             store.store("BTC/USDT", Timeframe.M1, day, rows), "test")
    frame = store.load_frame("BTC/USDT", Timeframe.M1, day, day)  # exact Decimals
    records = catalog.list_partitions(symbol="BTC/USDT")
    q = DataQualityMonitor().assess_symbol(
        SymbolData("BTC/USDT", frame, exchange="binance", catalog=records), START, END)
    assert (q.rows, q.gaps.count, q.gaps.missing_minutes, q.outliers.count) == (1410, 1, 30, 0)
    assert q.gaps.ranges == records[0].missing_ranges == ((ts(600), ts(629)),)
    assert q.score == round(1410 / 1440, 4)
