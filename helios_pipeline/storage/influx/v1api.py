"""InfluxDB's v1 HTTP API: ``/write`` (gzip line protocol), ``/query`` (InfluxQL), ``/ping``.

InfluxDB 1.x serves it natively and 2.x/3.x in v1 compatibility, so one small client covers
them all. Failures are sorted into two kinds the outbox acts on: :class:`InfluxUnavailableError`
(the server cannot take batches now: unreachable, 5xx, credentials refused, or its database
cannot be set up; keep them and try again later) and :class:`InfluxRejectedError` (it refused
these lines themselves: retrying the same bytes cannot help).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from helios_pipeline.storage.influx.lines import Precision

DEFAULT_RETENTION = "30d"
RETENTION_POLICY = "helios_warm"
_BEYOND_RETENTION = re.compile(r"points beyond retention policy dropped=(\d+)")
_NAME = re.compile(r"^[A-Za-z0-9_\-.]+$")
# The v1 API spells microseconds "u" (it reads "us" as nanoseconds).
_V1_PRECISION: dict[Precision, str] = {"ms": "ms", "us": "u"}


class InfluxError(RuntimeError):
    """Base of the mirror's InfluxDB errors."""


class InfluxUnavailableError(InfluxError):
    """InfluxDB cannot take batches now (unreachable, 5xx, 401/403, database setup refused).

    Nothing is wrong with the batch: keep it and retry once the server or its setup is fixed.
    """


class InfluxRejectedError(InfluxError):
    """InfluxDB refused the request itself (4xx); sending the same bytes again cannot succeed."""


class DatabaseNotFoundError(InfluxRejectedError):
    """The database does not exist (a new or wiped server): create it, then retry."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What ``/write`` did with a batch.

    Attributes:
        dropped_old: Points InfluxDB dropped because they are older than the retention window
            (not an error: the mirror only keeps the last 30 days).
    """

    dropped_old: int = 0


class InfluxV1Client:
    """One keep-alive connection to an InfluxDB v1 HTTP API.

    Args:
        url: Base URL (``http://host:8086``); ``user:password@`` in it becomes basic auth.
        timeout_s: Connect and read timeout per request.
    """

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL {url!r}: expected http(s)://host:port, "
                             "e.g. http://127.0.0.1:8086.")
        self._parts = parts
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout_s
        self._headers: dict[str, str] = {}
        if parts.username is not None:
            token = f"{urllib.parse.unquote(parts.username)}:" \
                    f"{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        self._conn: http.client.HTTPConnection | None = None

    @property
    def where(self) -> str:
        """The server's address without credentials, for messages."""
        return f"{self._parts.scheme}://{self._parts.hostname}:{self._parts.port or ''}"

    def ping(self) -> bool:
        """Whether ``/ping`` answers 204 now."""
        try:
            status, _ = self._request("GET", "/ping", b"", {})
        except InfluxUnavailableError:
            return False
        return status == 204

    def ensure_database(self, database: str, retention: str = DEFAULT_RETENTION) -> None:
        """Create ``database`` with a default retention policy of ``retention`` (idempotent).

        Raises:
            ValueError: The database name or duration is not a plain InfluxQL identifier/duration.
            InfluxUnavailableError: The server cannot be reached, or refused to set the database
                up (e.g. it exists with another ``helios_warm`` policy): batches must wait.
        """
        _check_name(database)
        if not re.fullmatch(r"\d+[hdw]", retention):
            raise ValueError(f"Retention {retention!r}: expected an InfluxQL duration like 30d.")
        statement = (f'CREATE DATABASE "{database}" WITH DURATION {retention} '
                     f'NAME "{RETENTION_POLICY}"')
        try:
            self.query(statement)
        except InfluxRejectedError as exc:
            raise InfluxUnavailableError(
                f"{exc}. Fix or drop database {database!r} (or set HELIOS_INFLUX_DATABASE to "
                "another name); batches stay queued until then.") from exc

    def query(self, influxql: str, database: str | None = None) -> list[dict[str, Any]]:
        """Run one InfluxQL statement with POST ``/query``; its result's ``series``.

        Raises:
            InfluxUnavailableError: The server cannot be reached.
            InfluxRejectedError: The statement failed; the message carries InfluxDB's reason.
        """
        params = {"q": influxql, "epoch": "ms"}
        if database is not None:
            params["db"] = database
        body = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, reply = self._request("POST", "/query", body, headers)
        payload = json.loads(reply or b"{}")
        error = payload.get("error") or (payload.get("results") or [{}])[0].get("error")
        if status >= 400 or error:
            raise InfluxRejectedError(f"InfluxDB at {self.where} refused {influxql!r}: {error}")
        series: list[dict[str, Any]] = payload["results"][0].get("series", [])
        return series

    def write(self, database: str, gzip_body: bytes, precision: Precision) -> WriteOutcome:
        """POST one gzip-compressed batch of lines to ``/write``.

        Raises:
            InfluxUnavailableError: The server cannot be reached or failed (5xx).
            DatabaseNotFoundError: ``database`` does not exist.
            InfluxRejectedError: The lines were refused (parse error, field type conflict).
        """
        path = "/write?" + urllib.parse.urlencode({"db": database,
                                                  "precision": _V1_PRECISION[precision]})
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        status, reply = self._request("POST", path, gzip_body, headers)
        if status == 204:
            return WriteOutcome()
        error = _error_text(reply)
        dropped = _BEYOND_RETENTION.search(error)
        if status == 400 and dropped and "unable to parse" not in error:
            return WriteOutcome(dropped_old=int(dropped.group(1)))
        if status == 404 and "database not found" in error:
            raise DatabaseNotFoundError(f"InfluxDB at {self.where}: {error}")
        raise InfluxRejectedError(f"InfluxDB at {self.where} refused a batch ({status}): {error}")

    def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, method: str, path: str, body: bytes,
                 headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            conn = self._connection()
            conn.request(method, self._prefix + path, body=body, headers=self._headers | headers)
            response = conn.getresponse()
            reply = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise InfluxUnavailableError(
                f"InfluxDB at {self.where} is unreachable ({exc}); batches stay queued."
            ) from exc
        if response.status in (401, 403):
            raise InfluxUnavailableError(
                f"InfluxDB at {self.where} refused the credentials ({response.status}: "
                f"{_error_text(reply)}); put user:password in HELIOS_INFLUX_URL. Batches stay "
                "queued.")
        if response.status >= 500:
            self.close()
            raise InfluxUnavailableError(
                f"InfluxDB at {self.where} failed ({response.status}): {_error_text(reply)}")
        return response.status, reply

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host, port = self._parts.hostname or "", self._parts.port
            kind = (http.client.HTTPSConnection if self._parts.scheme == "https"
                    else http.client.HTTPConnection)
            self._conn = kind(host, port, timeout=self._timeout)
        return self._conn


def _check_name(database: str) -> None:
    if not _NAME.fullmatch(database):
        raise ValueError(f"InfluxDB database {database!r}: use letters, digits, '_', '-', '.'.")


def _error_text(reply: bytes) -> str:
    try:
        return str(json.loads(reply).get("error", reply.decode(errors="replace")))
    except (ValueError, AttributeError):
        return reply.decode(errors="replace").strip()
