"""Data-quality monitoring: per-symbol quality numbers, HTML reports and alerts.

``monitor`` computes latency, gaps, outliers, cross-exchange divergence, completeness and a score
from plain inputs; ``detectors`` holds the detections it uses; ``report`` renders a
self-contained HTML report; ``alerts`` turns findings into log lines and webhook posts;
``daily`` gathers one day's stored candles, catalog and quarantine and writes the day's report;
``divergence`` compares two venues' closes for one symbol x day. Nothing here imports Dagster.
"""
