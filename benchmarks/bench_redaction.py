"""Cost of masking credentials in every log record (``security.logs.install_redaction``).

Logs 20,000 records to an in-memory handler, once with plain ``logging`` and once with the
redacting record factory installed, and prints microseconds per record beside the plain figure:
ordinary lines (most of the log: no credential, a substring test skips every pattern) and lines
that carry credentials (a Redis URL with its password, an exchange error quoting a signed URL).

Run: ``python -m benchmarks.bench_redaction``
"""

from __future__ import annotations

import io
import logging

from benchmarks._common import best_of, report
from helios_pipeline.security import logs
from helios_pipeline.security.redact import register_secret

RECORDS = 20_000


def _log_ordinary(logger: logging.Logger) -> None:
    for i in range(RECORDS):
        logger.warning("BTC/USDT %s..%s (%d days) ok, %d rows", "2024-04-01", "2024-04-02", 2, i)


def _log_credentials(logger: logging.Logger) -> None:
    for i in range(RECORDS // 2):
        logger.warning("stream status: %d ticks into %s, lag %.1f ms", i,
                       "redis://:hunter2-secret@127.0.0.1:6379/0", 1.5)
        logger.error("binance GET %s 404 Not Found",
                     "https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1"
                     f"&signature=9f86d081884c7d659a2feaa0c55ad015a{i}")


def _logger() -> logging.Logger:
    logger = logging.getLogger("bench.redaction")
    logger.handlers.clear()
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    logger.propagate = False
    return logger


def main() -> None:
    """Plain logging first, then with redaction installed."""
    logger = _logger()
    plain = [best_of(lambda: _log_ordinary(logger), repeat=3),
             best_of(lambda: _log_credentials(logger), repeat=3)]
    register_secret("hunter2-secret")
    logs.install_redaction()
    ours = [best_of(lambda: _log_ordinary(logger), repeat=3),
            best_of(lambda: _log_credentials(logger), repeat=3)]
    per = 1e6 / RECORDS
    report("ordinary log line, redaction installed", ours[0] * per, plain[0] * per,
           "us/record", "plain logging", goal="within 1.3x of plain logging")
    report("log line carrying credentials, masked", ours[1] * per, plain[1] * per,
           "us/record", "plain logging (unmasked)")


if __name__ == "__main__":
    main()
