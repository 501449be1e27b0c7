"""The access trail of the read API: one record per request, allowed or denied.

The service calls an :data:`AccessRecorder` for every request; the default,
:class:`JsonlAccessLog`, appends JSON lines to ``<data_dir>/system/api_access/access.jsonl``.
Any other callable (an audit trail) can take its place.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class AccessRecord:
    """One request as the service answered it.

    Attributes:
        at: UTC time the request arrived, ISO 8601.
        token: The token's name, or ``None`` when none was recognised.
        method: HTTP method.
        route: The path asked for (without the query string).
        symbol: Unified symbol the request was about, if any.
        status: HTTP status answered.
        ms: Time spent answering, in milliseconds.
    """

    at: str
    token: str | None
    method: str
    route: str
    symbol: str | None
    status: int
    ms: float


AccessRecorder = Callable[[AccessRecord], None]


def access_log_path(data_dir: Path) -> Path:
    """The default access log of a data root."""
    return data_dir / "system" / "api_access" / "access.jsonl"


class JsonlAccessLog:
    """Appends each record as one JSON line (thread-safe; the file's folder is created).

    Args:
        path: The log file, usually :func:`access_log_path`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, record: AccessRecord) -> None:
        """Append ``record``."""
        line = json.dumps(asdict(record), sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as log:
            log.write(line)
