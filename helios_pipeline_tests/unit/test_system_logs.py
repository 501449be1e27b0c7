"""``system/`` logs: warnings and errors, and one JSON line per exchange request, rotated daily."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from helios_pipeline.domain.logs import API_PERFORMANCE_LOGGER
from helios_pipeline.storage.system_logs import install_system_logs


def test_errors_and_request_timings_land_under_system(tmp_path: Path) -> None:
    install_system_logs(tmp_path)
    install_system_logs(tmp_path)  # once per root, however often it is called
    logging.getLogger("helios_pipeline.test").warning("disk %s is slow", "sda")
    logging.getLogger("helios_pipeline.test").info("not an error")
    logging.getLogger(API_PERFORMANCE_LOGGER).info(
        "binance klines 200", extra={"api": {"exchange": "binance", "endpoint": "klines",
                                              "status": 200, "ms": 12.5, "weight": 2}})
    for handler in [*logging.getLogger("helios_pipeline").handlers,
                    *logging.getLogger(API_PERFORMANCE_LOGGER).handlers]:
        handler.flush()
    errors = (tmp_path / "system" / "error_logs" / "errors.log").read_text().splitlines()
    assert len(errors) == 1
    assert errors[0].endswith("WARNING helios_pipeline.test: disk sda is slow")
    lines = (tmp_path / "system" / "api_performance" / "requests.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["endpoint"] == "klines"
    assert record["ms"] == 12.5
    assert record["ts"].endswith("Z")
    errors_handler = next(h for h in logging.getLogger("helios_pipeline").handlers
                          if str(tmp_path) in str(getattr(h, "baseFilename", "")))
    errors_handler.doRollover()  # what midnight UTC does
    logging.getLogger("helios_pipeline.test").error("the next day")
    errors_handler.flush()
    folder = tmp_path / "system" / "error_logs"
    rotated = sorted(p.name for p in folder.iterdir())
    assert rotated == ["errors.log", f"errors.log.{datetime.now(UTC):%Y-%m-%d}"]
    assert (folder / "errors.log").read_text().rstrip().endswith("the next day")
    for name in ("helios_pipeline", "helios", API_PERFORMANCE_LOGGER):
        for handler in list(logging.getLogger(name).handlers):
            if str(tmp_path) in str(getattr(handler, "baseFilename", "")):
                logging.getLogger(name).removeHandler(handler)
                handler.close()
