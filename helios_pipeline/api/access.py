"""The access trail of the read API: one record per request, allowed or denied.

The service calls an :data:`AccessRecorder` for every request; the default,
:class:`JsonlAccessLog`, appends JSON lines to ``<data_dir>/system/api_access/access.jsonl``;
``helios serve`` wraps it in :class:`AuditedAccess`, which also appends every request to the
hash-chained audit trail (``helios audit --kind api_read``, ``helios audit verify``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from helios_pipeline.security.audit import AuditLog


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


class AuditedAccess:
    """Records each request in the hash-chained audit trail as well as in ``access_log``.

    Served reads are recorded as ``api_read``, refusals (401, 403, 429) as ``api_denied`` and
    other failures as ``api_error``, with the token name, route, status and time.

    Args:
        audit: The platform's audit trail (``security.audit.AuditLog``).
        access_log: The plain access log that every request also goes to.
    """

    def __init__(self, audit: AuditLog, access_log: AccessRecorder) -> None:
        self.audit, self.access_log = audit, access_log

    def __call__(self, record: AccessRecord) -> None:
        """Append ``record`` to the access log, then to the audit trail."""
        self.access_log(record)
        kind = ("api_read" if record.status < 400 else
                "api_denied" if record.status in (401, 403, 429) else "api_error")
        self.audit.record(kind, f"{record.method} {record.route}", token=record.token,
                          symbol=record.symbol, status=record.status, ms=round(record.ms, 3))
