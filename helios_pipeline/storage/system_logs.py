"""The ``system/`` logs under the data root, rotated at UTC midnight.

::

    system/error_logs/errors.log              warnings and errors of every helios logger
    system/error_logs/errors.log.2024-05-01   the previous days (``HELIOS_SYSTEM_LOG_DAYS`` kept)
    system/api_performance/requests.jsonl     one JSON line per exchange request attempt:
                                              time, exchange, endpoint, status, ms, weight

The exchange client reports each attempt to the ``helios.api_performance`` logger
(``exchanges.resilient``); nothing is written until :func:`install_system_logs` attaches the
files, which the ``helios`` command and the Dagster code location do once per process.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path

from helios_pipeline.domain.logs import API_PERFORMANCE_LOGGER

SYSTEM = "system"
DEFAULT_KEEP_DAYS = 30
_installed: set[Path] = set()


class _JsonLines(logging.Formatter):
    """A record's ``api`` mapping (or its message) as one JSON line with a UTC timestamp."""

    def format(self, record: logging.LogRecord) -> str:
        payload = getattr(record, "api", None) or {"message": record.getMessage()}
        moment = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        return json.dumps({"ts": f"{moment}.{int(record.msecs):03d}Z", **payload},
                          sort_keys=True, default=str)


def system_dir(data_dir: Path) -> Path:
    """``{data_dir}/system``."""
    return data_dir / SYSTEM


def _daily(path: Path, keep_days: int) -> logging.handlers.TimedRotatingFileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.TimedRotatingFileHandler(
        path, when="midnight", utc=True, backupCount=keep_days, encoding="utf-8", delay=True)


def install_system_logs(data_dir: Path, keep_days: int = DEFAULT_KEEP_DAYS) -> None:
    """Write warnings/errors and exchange request timings under ``system/`` (once per root)."""
    root = system_dir(data_dir).resolve()
    if root in _installed:
        return
    errors = _daily(root / "error_logs" / "errors.log", keep_days)
    errors.setLevel(logging.WARNING)
    utc = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    utc.converter = time.gmtime
    errors.setFormatter(utc)
    logging.getLogger("helios_pipeline").addHandler(errors)
    logging.getLogger("helios").addHandler(errors)
    requests = _daily(root / "api_performance" / "requests.jsonl", keep_days)
    formatter = _JsonLines()
    formatter.converter = time.gmtime
    requests.setFormatter(formatter)
    api = logging.getLogger(API_PERFORMANCE_LOGGER)
    api.addHandler(requests)
    api.setLevel(logging.INFO)
    api.propagate = False  # one line per request is for the file, not for consoles
    _installed.add(root)
