"""Redaction applied to every log record and, in the CLI, to stdout and stderr.

:func:`install_redaction` is called once per process by ``helios`` (``cli/main.py``) and by the
Dagster code location (``definitions.py``). It

* installs a log-record factory that redacts each record as it is created, whichever logger
  made it (Dagster's run loggers too, so the event log stores masked messages);
* adds :class:`RedactingFilter` to the root logger, the ``helios``/``helios_pipeline`` loggers
  and their handlers, for records built elsewhere (``logging.makeLogRecord``);
* optionally wraps ``sys.stdout``/``sys.stderr`` so ``print`` and tracebacks are masked too.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from helios_pipeline.security.redact import redact

HELIOS_LOGGERS = ("helios", "helios_pipeline")

_installed = threading.Event()


def redact_record(record: logging.LogRecord) -> None:
    """Mask credentials in ``record``'s message, exception text and stack, in place."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed %-format: keep the raw parts, masked
        message = f"{record.msg} {record.args}"
    clean = redact(message)
    if clean != message or not isinstance(record.msg, str):
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """A filter that lets every record through with its credentials masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        redact_record(record)
        return True


class RedactingStream:
    """A text stream that masks credentials in everything written to it.

    Everything else (``isatty``, ``fileno``, ``encoding``, ``buffer``) is the wrapped stream's.
    """

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        """Write ``text`` masked; returns the length of ``text`` as given."""
        self.wrapped.write(redact(text))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        """Write each line masked."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _redacting_factory(
    inner: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        redact_record(record)
        return record

    factory.helios_redacting = True  # type: ignore[attr-defined]
    return factory


def install_redaction(*, streams: bool = False) -> None:
    """Mask credentials in every log record of this process (idempotent).

    Args:
        streams: Also wrap ``sys.stdout`` and ``sys.stderr`` (the CLI does; a Dagster code
            server keeps its own streams).
    """
    if not _installed.is_set():
        current = logging.getLogRecordFactory()
        if not getattr(current, "helios_redacting", False):
            logging.setLogRecordFactory(_redacting_factory(current))
        _installed.set()
    _add_filters()
    if streams:
        if not isinstance(sys.stdout, RedactingStream):
            sys.stdout = RedactingStream(sys.stdout)
        if not isinstance(sys.stderr, RedactingStream):
            sys.stderr = RedactingStream(sys.stderr)


def _add_filters() -> None:
    for logger in (logging.getLogger(), *map(logging.getLogger, HELIOS_LOGGERS)):
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactingFilter) for f in target.filters):
                target.addFilter(RedactingFilter())
