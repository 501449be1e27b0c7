"""Names of the loggers layers share (the exchange client writes, storage files the lines)."""

from __future__ import annotations

# One INFO record per exchange request attempt, with an ``api`` mapping: exchange, endpoint,
# status, ms, weight. ``storage.system_logs`` writes them to system/api_performance/.
API_PERFORMANCE_LOGGER = "helios.api_performance"
