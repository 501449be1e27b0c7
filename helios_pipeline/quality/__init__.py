"""Data-quality monitoring: per-symbol quality numbers, HTML reports and alerts.

``monitor`` computes latency, gaps, outliers, cross-exchange divergence, completeness and a score
from plain inputs; ``report`` renders a self-contained HTML report; ``alerts`` turns findings into
log lines and webhook posts. Nothing here imports Dagster.
"""
