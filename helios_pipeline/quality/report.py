"""The data-quality report: one self-contained HTML file with inline SVG charts.

:func:`write_quality_report` renders a :class:`~helios_pipeline.quality.monitor.QualitySummary`
(plus the candle frames, for the price charts) and writes it atomically; the daily report lives at
``storage.paths.quality_report_path`` (``system/data_quality_reports/...YYYYMMDD.html``). The
file has no external references (no scripts, fonts or images to fetch), so it can be mailed,
attached to a Dagster run or opened offline. Every piece of text is HTML-escaped: symbols and
rule names come from outside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

import pandas as pd

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS, ms_to_datetime
from helios_pipeline.quality.detectors import (
    ANOMALY_FLAGS,
    CLOSE,
    HeldMove,
    as_float,
    open_times_ms,
    parse_anomaly_flags,
)
from helios_pipeline.quality.monitor import QualitySummary, Status, SymbolQuality
from helios_pipeline.security.redact import redact
from helios_pipeline.storage.atomic import write_atomic

COLORS: dict[Status, str] = {"ok": "#1a7f37", "warn": "#b7791f", "fail": "#c53030"}
_LINE, _GRID, _MUTED, _GAP, _SOFT = "#2b6cb0", "#e2e8f0", "#718096", "#fc8181", "#dd6b20"
_DASH = "\u2014"
_MAX_POINTS = 2400  # per price chart; longer series keep each bucket's low and high
_TIME_STEPS_MIN = (15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7 * 1440, 14 * 1440, 28 * 1440)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;
  background:#f4f6f9;margin:0;padding:24px 32px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 12px}
.meta{color:#4a5568;margin-bottom:16px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:16px 20px;
  margin-bottom:18px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;color:#fff;font-weight:600;
  font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.big{font-size:15px;padding:4px 14px;vertical-align:middle;margin-left:8px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #edf2f7;vertical-align:top}
th{background:#f7fafc;color:#4a5568;font-weight:600;font-size:12px;text-transform:uppercase;
  letter-spacing:.03em}
td.n{text-align:right}th.n{text-align:right}
.sub{color:#718096;font-size:12px}
ul.reasons{margin:0;padding-left:20px}ul.reasons li{margin:2px 0}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.legend span{margin-right:16px;color:#4a5568;font-size:12px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
footer{color:#718096;font-size:12px;margin-top:8px}
"""


def write_quality_report(
    summary: QualitySummary, frames: Mapping[str, pd.DataFrame], path: Path,
    held_moves: Sequence[HeldMove] = (),
) -> Path:
    """Render the report and write it atomically to ``path`` (parent folders are created).

    Args:
        summary: The monitor's result for the period.
        frames: Candle frames by ``exchange:symbol`` or symbol, for the price charts; a symbol
            without a frame gets a note instead of a chart.
        path: Destination, usually ``storage.paths.quality_report_path``.
        held_moves: Candles quarantined for price rules only, listed one by one near the top
            (they may be real moves a person should look at and release).

    Returns:
        ``path``.

    Raises:
        OSError: The file could not be written; an older report at ``path`` is left as it was.
    """
    # Reasons quote exchange errors and URLs: mask any credential they carry.
    write_atomic(path, redact(render_quality_report(summary, frames, held_moves)).encode("utf-8"))
    return path


def render_quality_report(
    summary: QualitySummary, frames: Mapping[str, pd.DataFrame],
    held_moves: Sequence[HeldMove] = (),
) -> str:
    """The report as one HTML string (see :func:`write_quality_report`)."""
    period = f"{_when(summary.start_ms)} \u2192 {_when(summary.end_ms)} UTC"
    sections = [
        f"<h1>Helios data-quality report {_badge(summary.status, 'big')}</h1>",
        f'<div class="meta">{_e(period)} \u00b7 {_e(summary.timeframe.value)} candles \u00b7 '
        f"{len(summary.symbols)} symbol(s) \u00b7 generated "
        f"{_e(summary.generated_at.strftime('%Y-%m-%d %H:%M:%S %Z'))}</div>",
        _card("Findings", _reasons(summary.reasons)),
        *([_card(f"Price moves held in quarantine ({len(held_moves)})",
                 _held_moves_table(held_moves))] if held_moves else []),
        _card("Per symbol", _headline_table(summary.symbols)),
        '<div class="grid2">'
        + _card("Quality score per symbol", _score_chart(summary.symbols))
        + _card("Gap timeline", _gap_timeline(summary))
        + "</div>",
        *(_card(f"{q.key} \u2014 close", _price_chart(q, _frame_for(q, frames)))
          for q in summary.symbols),
    ]
    if any(q.divergence is not None for q in summary.symbols):
        sections.append(_card("Cross-exchange divergence", _divergence_table(summary.symbols)))
    sections.append(
        "<footer>Score = completeness \u00d7 mean validation score \u00d7 (1 \u2212 min(1, 10 "
        "\u00d7 outlier share)) \u00d7 (1 \u2212 share of aligned minutes above the divergence "
        "threshold). Status: fail / warn / ok by the monitor's thresholds.</footer>")
    title = f"Data-quality report {_when(summary.start_ms)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")


# -- tables ---------------------------------------------------------------------------------------


def _headline_table(symbols: Sequence[SymbolQuality]) -> str:
    head = ("<tr><th>Symbol</th><th>Status</th><th class=n>Rows</th><th class=n>Complete</th>"
            "<th class=n>Missing min</th><th class=n>Longest gap</th><th>Quarantined</th>"
            "<th>Soft-flagged</th><th class=n>Outliers</th><th class=n>Latency p50/p95/p99</th>"
            "<th class=n>Score</th></tr>")
    rows = []
    for q in symbols:
        latency = _DASH if q.latency is None else (
            f"{q.latency.p50_ms:,.0f} / {q.latency.p95_ms:,.0f} / {q.latency.p99_ms:,.0f} ms")
        rows.append(
            f"<tr><td><b>{_e(q.key)}</b></td><td>{_badge(q.status)}</td>"
            f"<td class=n>{q.rows:,}<div class=sub>of {q.expected_rows:,}</div></td>"
            f"<td class=n>{q.completeness:.2%}</td>"
            f"<td class=n>{q.gaps.missing_minutes:,}<div class=sub>{q.gaps.count} gap(s)</div></td>"
            f"<td class=n>{q.gaps.longest_minutes:,} min</td>"
            f"<td>{_counts(q.quarantine.rows, q.quarantine.by_rule)}</td>"
            f"<td>{_counts(q.soft_flags.rows, q.soft_flags.by_flag)}</td>"
            f"<td class=n>{q.outliers.count:,}</td><td class=n>{_e(latency)}</td>"
            f'<td class=n><b style="color:{COLORS[q.status]}">{q.score:.3f}</b></td></tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def _divergence_table(symbols: Sequence[SymbolQuality]) -> str:
    head = ("<tr><th>Symbol</th><th>Versus</th><th class=n>Aligned min</th><th class=n>Max</th>"
            "<th class=n>Mean</th><th class=n>Min above</th><th>Windows above threshold</th></tr>")
    rows = []
    for q in symbols:
        d = q.divergence
        if d is None:
            continue
        windows = ", ".join(
            f"{_clock(w.start_ms)}\u2013{_clock(w.end_ms)} ({w.minutes} min, max "
            f"{w.max_divergence:.2%})" for w in d.windows[:8])
        more = f" and {len(d.windows) - 8} more" if len(d.windows) > 8 else ""
        rows.append(
            f"<tr><td><b>{_e(q.key)}</b></td><td>{_e(d.reference_exchange or 'second venue')}"
            f"</td><td class=n>{d.aligned_minutes:,}</td><td class=n>{d.max:.2%}</td>"
            f"<td class=n>{d.mean:.3%}</td><td class=n>{d.minutes_above:,}"
            f"<div class=sub>&gt; {d.threshold:.1%}</div></td>"
            f"<td>{_e(windows + more) or _DASH}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _held_moves_table(moves: Sequence[HeldMove]) -> str:
    note = ("<p>Each candle broke only a price rule. It may be a real move: compare it with "
            "another venue and, if it was real, restore it with the command shown.</p>")
    head = ("<tr><th>Symbol</th><th>Open (UTC)</th><th>Rules</th><th>Verdict</th>"
            "<th>Values</th><th>Restore with</th></tr>")
    rows = []
    for m in sorted(moves, key=lambda m: (m.timestamp_ms, m.symbol)):
        when = ms_to_datetime(m.timestamp_ms)
        verdict = (f"not shown by {m.unconfirmed_by}" if m.unconfirmed_by
                   else "no reference venue asked")
        values = ", ".join(f"{k}={v}" for k, v in m.fields.items() if k != "unconfirmed_by")
        command = f"helios quarantine release {m.symbol} {when:%Y-%m-%dT%H:%M}"
        rows.append(
            f"<tr><td><b>{_e(m.symbol)}</b></td><td>{when:%Y-%m-%d %H:%M}</td>"
            f"<td>{_e(', '.join(m.rules))}</td><td>{_e(verdict)}</td>"
            f"<td>{_e(values) or _DASH}</td><td><code>{_e(command)}</code></td></tr>")
    return f"{note}<table>{head}{''.join(rows)}</table>"


def _reasons(reasons: Sequence[str]) -> str:
    if not reasons:
        return "<p>No findings: every symbol is complete and clean.</p>"
    return '<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>"


def _counts(total: int, by_name: Mapping[str, int]) -> str:
    if total == 0:
        return "0"
    detail = ", ".join(f"{_e(name)}: {n:,}" for name, n in by_name.items())
    return f"{total:,}<div class=sub>{detail}</div>"


# -- charts ---------------------------------------------------------------------------------------


def _score_chart(symbols: Sequence[SymbolQuality]) -> str:
    width, left, right, row = 560, 150, 56, 30
    height = 34 + row * max(1, len(symbols))
    plot = width - left - right
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + tick * plot
        parts.append(f'<line x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="{height - 22}" '
                     f'stroke="{_GRID}"/>'
                     f'<text x="{x:.1f}" y="{height - 6}" font-size="11" fill="{_MUTED}" '
                     f'text-anchor="middle">{tick:g}</text>')
    for i, q in enumerate(symbols):
        y = 12 + i * row
        bar = max(q.score * plot, 1.0)
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{_e(_short(q.key, 20))}</text>"
            f'<rect x="{left}" y="{y}" width="{bar:.1f}" height="20" rx="3" '
            f'fill="{COLORS[q.status]}"><title>{_e(q.key)}: {q.score:.4f}</title></rect>'
            f'<text x="{left + bar + 6:.1f}" y="{y + 14}" font-size="12">{q.score:.3f}</text>')
    return _svg(width, height, "".join(parts), "Quality score per symbol")


def _gap_timeline(summary: QualitySummary) -> str:
    width, left, right, row = 560, 150, 40, 28
    symbols = summary.symbols
    height = 40 + row * max(1, len(symbols))
    x = _Scale(summary.start_ms, summary.end_ms, left, width - right)
    parts = [_time_axis(summary.start_ms, summary.end_ms, x, 8, height - 24, height - 8)]
    for i, q in enumerate(symbols):
        y = 10 + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 13}" font-size="12" text-anchor="end">'
            f"{_e(_short(q.key, 20))}</text>"
            f'<rect x="{left}" y="{y}" width="{width - right - left}" height="18" rx="2" '
            f'fill="#c6f6d5"/>')
        for first, last in q.gaps.ranges:
            x0, x1 = x(first), x(last + summary.timeframe.ms)
            minutes = (last - first + summary.timeframe.ms) // MINUTE_MS
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 2.0):.1f}" height="18" '
                f'fill="{COLORS["fail"]}"><title>{_e(q.key)}: missing {_clock(first)}\u2013'
                f"{_clock(last)} ({minutes:,} min)</title></rect>")
    legend = ('<div class="legend"><span><b style="color:#68d391">\u25a0</b> present</span>'
              f'<span><b style="color:{COLORS["fail"]}">\u25a0</b> missing</span></div>')
    return _svg(width, height, "".join(parts), "Gap timeline") + legend


def _price_chart(q: SymbolQuality, frame: pd.DataFrame | None) -> str:
    if frame is None or CLOSE not in frame.columns:
        return '<p class="sub">No candles were supplied for this symbol.</p>'
    all_times = open_times_ms(frame, q.key)
    keep = (all_times >= q.start_ms) & (all_times < q.end_ms)
    times: list[int] = all_times[keep].tolist()
    closes: list[float] = as_float(frame[CLOSE][keep]).tolist()
    if not times:
        return '<p class="sub">No candles in the period.</p>'
    soft = _soft_flag_points(frame[keep], times, closes)
    outliers = [(r.ts_ms, r.close, f"outlier {r.deviation:+.2%} vs median ({r.close:,.8g})")
                for r in q.outliers.rows]
    legend = ('<div class="legend"><span style="color:#2b6cb0">\u2501 close</span>'
              f'<span style="color:{COLORS["fail"]}">\u25cf outlier ({len(outliers)})</span>'
              f'<span style="color:{_SOFT}">\u25c7 soft-flagged ({len(soft)})</span>'
              f'<span style="color:#e53e3e">\u25a0 gap ({q.gaps.count})</span></div>')
    return _price_svg(q, times, closes, soft, outliers) + legend


def _price_svg(
    q: SymbolQuality, times: list[int], closes: list[float],
    soft: list[tuple[int, float, str]], outliers: list[tuple[int, float, str]],
) -> str:
    values = [v for v in closes if math.isfinite(v)] or [0.0]
    low, high = _padded(min(values), max(values))
    width, height, left, right, top, bottom = 1180, 280, 78, 40, 12, 30
    x = _Scale(q.start_ms, q.end_ms, left, width - right)
    y = _Scale(low, high, height - bottom, top)
    parts = [_value_axis(low, high, y, left, width - right),
             _time_axis(q.start_ms, q.end_ms, x, top, height - bottom, height - 10)]
    for first, last in q.gaps.ranges:
        x0, x1 = x(first), x(last + q.timeframe.ms)
        parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1.5):.1f}" '
                     f'height="{height - bottom - top}" fill="{_GAP}" opacity="0.3">'
                     f"<title>missing {_clock(first)}\u2013{_clock(last)}</title></rect>")
    # Break the line only where a gap is wide enough to see (3 px); the shading shows the rest.
    break_ms = max(q.timeframe.ms, 3 * (q.end_ms - q.start_ms) / (width - right - left))
    for seg_t, seg_v in _segments(times, closes, break_ms):
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(seg_t, seg_v, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{_LINE}" '
                     'stroke-width="1.3" stroke-linejoin="round"/>')
    parts.extend(_marker(x(t), y(v), COLORS["fail"], "circle", f"{_clock(t)} {label}")
                 for t, v, label in outliers)
    parts.extend(_marker(x(t), y(v), _SOFT, "diamond", f"{_clock(t)} {label}")
                 for t, v, label in soft)  # hollow, drawn last: visible around an outlier dot
    return _svg(width, height, "".join(parts), f"Close of {q.key}")


def _soft_flag_points(
    frame: pd.DataFrame, times: Sequence[int], closes: Sequence[float]
) -> list[tuple[int, float, str]]:
    if ANOMALY_FLAGS not in frame.columns:
        return []
    points = []
    for t, v, cell in zip(times, closes, frame[ANOMALY_FLAGS].tolist(), strict=True):
        flags = parse_anomaly_flags(cell)
        if flags and math.isfinite(v):
            points.append((int(t), float(v), "flagged: " + ", ".join(flags)))
    return points


def _marker(cx: float, cy: float, color: str, shape: str, tip: str) -> str:
    title = f"<title>{_e(tip)}</title>"
    if shape == "circle":
        return (f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color}" stroke="#fff" '
                f'stroke-width="1.5">{title}</circle>')
    return (f'<rect x="{cx - 6:.1f}" y="{cy - 6:.1f}" width="12" height="12" fill="none" '
            f'stroke="{color}" stroke-width="2" transform="rotate(45 {cx:.1f} {cy:.1f})">'
            f"{title}</rect>")


def _segments(
    times: Sequence[int], values: Sequence[float], break_ms: float
) -> Iterable[tuple[list[int], list[float]]]:
    """Runs of candles no more than ``break_ms`` apart, each thinned to its extremes."""
    run_t: list[int] = []
    run_v: list[float] = []
    budget = max(_MAX_POINTS // 2, 2)
    for t, v in zip(times, values, strict=True):
        if run_t and t - run_t[-1] > break_ms:
            yield _thin(run_t, run_v, budget)
            run_t, run_v = [], []
        if math.isfinite(v):
            run_t.append(int(t))
            run_v.append(float(v))
    if run_t:
        yield _thin(run_t, run_v, budget)


def _thin(times: list[int], values: list[float], buckets: int) -> tuple[list[int], list[float]]:
    if len(times) <= 2 * buckets:
        return times, values
    size = math.ceil(len(times) / buckets)
    out_t: list[int] = []
    out_v: list[float] = []
    for start in range(0, len(times), size):
        chunk = range(start, min(start + size, len(times)))
        lo, hi = min(chunk, key=values.__getitem__), max(chunk, key=values.__getitem__)
        for i in sorted({lo, hi}):
            out_t.append(times[i])
            out_v.append(values[i])
    return out_t, out_v


def _value_axis(low: float, high: float, y: _Scale, left: int, right: int) -> str:
    step = _nice_step((high - low) / 5)
    decimals = next((d for d in range(12) if abs(round(step, d) - step) < step * 1e-9), 12)
    parts = []
    tick = math.ceil(low / step) * step
    while tick <= high:
        py = y(tick)
        parts.append(f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" '
                     f'stroke="{_GRID}"/><text x="{left - 6}" y="{py + 4:.1f}" font-size="11" '
                     f'fill="{_MUTED}" text-anchor="end">{tick:,.{decimals}f}</text>')
        tick += step
    return "".join(parts)


def _time_axis(start_ms: int, end_ms: int, x: _Scale, top: int, bottom: int, label_y: int) -> str:
    span_min = (end_ms - start_ms) / MINUTE_MS
    max_ticks = max(2, int((x(end_ms) - x(start_ms)) // 90))  # room for a "03-01 12:00" label
    step_min = next((s for s in _TIME_STEPS_MIN if span_min / s <= max_ticks),
                    _TIME_STEPS_MIN[-1])
    step = step_min * MINUTE_MS
    fmt = "%Y-%m-%d" if step >= DAY_MS else ("%H:%M" if end_ms - start_ms <= DAY_MS
                                             else "%m-%d %H:%M")
    parts = []
    tick = -(-start_ms // step) * step
    while tick <= end_ms:
        px = x(tick)
        parts.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" '
                     f'stroke="{_GRID}"/><text x="{px:.1f}" y="{label_y}" font-size="11" '
                     f'fill="{_MUTED}" text-anchor="middle">'
                     f"{_e(ms_to_datetime(tick).strftime(fmt))}</text>")
        tick += step
    return "".join(parts)


class _Scale:
    """Linear map from a data interval onto a pixel interval."""

    def __init__(self, d0: float, d1: float, p0: float, p1: float) -> None:
        self._d0, self._p0 = d0, p0
        self._k = (p1 - p0) / (d1 - d0) if d1 != d0 else 0.0

    def __call__(self, value: float) -> float:
        return self._p0 + (value - self._d0) * self._k


def _nice_step(raw: float) -> float:
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))


def _padded(low: float, high: float) -> tuple[float, float]:
    pad = (high - low) * 0.06 or abs(high) * 0.01 or 1.0
    return low - pad, high + pad


# -- small HTML pieces ----------------------------------------------------------------------------


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-label="{_e(label)}">{body}</svg>')


def _card(title: str, body: str) -> str:
    return f'<section class="card"><h2>{_e(title)}</h2>{body}</section>'


def _badge(status: Status, extra: str = "") -> str:
    return (f'<span class="badge {extra}" style="background:{COLORS[status]}">'
            f"{_e(status)}</span>")


def _frame_for(q: SymbolQuality, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    return frames.get(q.key, frames.get(q.symbol))


def _when(ts_ms: int) -> str:
    return ms_to_datetime(ts_ms).strftime("%Y-%m-%d %H:%M")


def _clock(ts_ms: int) -> str:
    return ms_to_datetime(ts_ms).strftime("%m-%d %H:%M")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _e(text: str) -> str:
    return escape(text, quote=True)
