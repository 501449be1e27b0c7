"""A Rich console that masks credentials before it renders anything."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from helios_pipeline.security.redact import redact


def _clean(objects: tuple[Any, ...]) -> list[Any]:
    return [redact(o) if isinstance(o, str) else o for o in objects]


class RedactingConsole(Console):
    """``rich.console.Console`` whose ``print`` and ``log`` mask credentials in text.

    Masking happens before markup and highlighting split the text into styled pieces, so a
    password coloured in parts is still found. (The CLI also wraps stdout, see
    :func:`~helios_pipeline.security.logs.install_redaction`, for tables and other renderables.)
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print ``objects`` with their text redacted."""
        super().print(*_clean(objects), **kwargs)

    def log(self, *objects: Any, **kwargs: Any) -> None:
        """Log ``objects`` with their text redacted."""
        super().log(*_clean(objects), **kwargs)
