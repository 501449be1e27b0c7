"""The HTML quality report: written atomically, self-contained, numbers and charts, escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from helios_pipeline.quality.monitor import DataQualityMonitor, QualitySummary, SymbolData
from helios_pipeline.quality.report import render_quality_report, write_quality_report
from helios_pipeline.storage.paths import quality_report_path
from helios_pipeline_tests.unit.test_quality_monitor import (
    END,
    QUARANTINED,
    START,
    candles,
    reference_closes,
)

EVIL_SYMBOL = '<script>alert("sym")</script>'
EVIL_RULE = '<img src=x onerror="alert(1)">&rule'


def summary_and_frames() -> tuple[QualitySummary, dict[str, pd.DataFrame]]:
    btc = candles()
    eth = candles().iloc[::2]  # every other minute of the 1,410: 705 rows, 705 gaps
    evil = candles().iloc[:100]
    inputs = [
        SymbolData("BTC/USDT", btc, exchange="binance", quarantine=QUARANTINED,
                   latency_ms=[float(v) for v in range(1, 101)],
                   reference_closes=reference_closes(btc), reference_exchange="kraken"),
        SymbolData("ETH/USDT", eth),
        SymbolData(EVIL_SYMBOL, evil, quarantine={EVIL_RULE: 3}),
    ]
    summary = DataQualityMonitor().assess(inputs, START, END)
    return summary, {"binance:BTC/USDT": btc, "ETH/USDT": eth, EVIL_SYMBOL: evil}


@pytest.fixture(scope="module")
def report() -> str:
    summary, frames = summary_and_frames()
    return render_quality_report(summary, frames)


def test_report_path_uses_the_storage_layout(tmp_path: Path) -> None:
    assert quality_report_path(tmp_path, date(2024, 1, 2)) == (
        tmp_path / "system" / "data_quality_reports" / "data_quality_report_20240102.html")


def test_written_atomically_and_replaced(tmp_path: Path) -> None:
    summary, frames = summary_and_frames()
    path = quality_report_path(tmp_path / "data", date(2024, 1, 2))
    assert write_quality_report(summary, {}, path) == path
    first = path.read_text(encoding="utf-8")
    assert write_quality_report(summary, frames, path) == path
    second = path.read_text(encoding="utf-8")
    assert "No candles were supplied" in first
    assert "No candles were supplied" not in second
    assert second == render_quality_report(summary, frames)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


def test_headline_numbers_and_symbols(report: str) -> None:
    table = report[report.index("<h2>Per symbol"):report.index("<h2>Quality score per symbol")]
    text = " ".join(re.sub(r"<[^>]+>", " ", table).split())
    assert "binance:BTC/USDT" in text
    assert "ETH/USDT" in text
    row = text[text.index("binance:BTC/USDT"):]
    row = row[: row.index("ETH/USDT")]
    # rows, completeness, missing minutes, gaps, longest, quarantine by rule, soft flags, score
    for piece in ("1,410 of 1,440", "97.92%", "30 1 gap(s)", "30 min",
                  "2 ohlc_consistency: 2, price_spike: 1", "2 price_spike: 2",
                  "50 / 95 / 99 ms", "0.958"):
        assert piece in row, piece
    assert "705 of 1,440" in text
    assert "735 705 gap(s)" in text  # 704 one-minute gaps and the 31-minute one


def test_charts_are_inline_svg_with_markers(report: str) -> None:
    svgs = re.findall(r"<svg .*?</svg>", report, flags=re.S)
    # score bars, gap timeline, and one price chart per symbol
    assert len(svgs) == 2 + 3
    for svg in svgs:
        ET.fromstring(svg)  # noqa: S314 - our own output; well-formed XML: every piece of text is escaped
    btc_chart = next(s for s in svgs if 'aria-label="Close of binance:BTC/USDT"' in s)
    assert btc_chart.count("<circle") == 2  # the two outliers
    assert btc_chart.count('transform="rotate(45') == 2  # the two soft-flagged rows
    assert btc_chart.count("<polyline") == 2  # the 30-minute gap breaks the line
    timeline = next(s for s in svgs if 'aria-label="Gap timeline"' in s)
    assert timeline.count("missing 01-02 10:00\u201301-02 10:29 (30 min)") == 1


def test_divergence_table(report: str) -> None:
    assert "Cross-exchange divergence" in report
    table = report[report.index("Cross-exchange divergence"):]
    assert "kraken" in table
    assert "6.00%" in table
    assert "01-02 16:40\u201301-02 16:49 (10 min, max 6.00%)" in table


def test_malicious_names_are_escaped(report: str) -> None:
    assert EVIL_SYMBOL not in report
    assert EVIL_RULE not in report
    assert "<script" not in report
    assert "<img" not in report
    assert "&lt;script&gt;alert(&quot;sym&quot;)&lt;/script&gt;" in report
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;rule" in report


def test_self_contained(report: str) -> None:
    urls = set(re.findall(r"https?://[^\s\"'<>]+", report))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert "<link" not in report
    assert report.startswith("<!DOCTYPE html>")
