"""The one exact, compact wire encoding of a tick (:class:`~helios_pipeline.domain.ticks.Tick`).

The same bytes are written to the write-ahead log (``storage.hot.wal``) and stored in the Redis
hot tier (``storage.hot.store``), so a tick is encoded once on the hot path. The encoding is a
line of ``|``-separated ASCII fields, version first::

    1|binance|BTC/USDT|trade|1715000000000123|1714999999998|1715000000000123|42000.10|0.5|||987

i.e. ``version|exchange|symbol|kind|seq|exchange_ts_ms|received_ts_us|price|qty|bid|ask|event_id``.
Decimals are written with ``str(Decimal)`` and read back with ``Decimal(text)``, which round-trips
every digit and the exponent (``1.10`` stays ``1.10``); an absent value is an empty field. It is
about twice as fast as JSON through orjson once the dict is built, 20 % smaller, and the identity
fields can be read without decoding the rest (:func:`peek_identity`). Stream ids derive from the
writer-assigned ``seq`` (see ``storage.hot.store``).

A tick with flags (soft rules it broke, ``Tick.flags``) is written as version ``2``: the same
twelve fields plus a thirteenth, the rule names joined by ``,``::

    2|binance|BTC/USDT|trade|...|987|cross_exchange_divergence

Unflagged ticks keep the version-1 bytes, so logs and Redis entries written before flags existed
read as they always did. Both versions are read.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import cast

from helios_pipeline.domain.ticks import (
    DECIMAL_FIELDS,
    FLAG_SEPARATOR,
    SEPARATOR,
    Tick,
    TickError,
    TickKind,
)

FORMAT_VERSION = "1"
FIELD_COUNT = 12
FLAGGED_VERSION = "2"
_FIELD_COUNTS = {FORMAT_VERSION: FIELD_COUNT, FLAGGED_VERSION: FIELD_COUNT + 1}
_BSEP = SEPARATOR.encode()
_VERSION_PREFIXES = tuple((v + SEPARATOR).encode() for v in _FIELD_COUNTS)
_BYTE_COUNTS = {v.encode(): n for v, n in _FIELD_COUNTS.items()}


def encode_tick(tick: Tick, seq: int | None = None) -> bytes:
    """The tick's wire bytes (see the module docstring).

    Args:
        tick: The tick.
        seq: Sequence number to write instead of ``tick.seq`` (the writer assigns it here, so it
            need not build a new ``Tick``).
    """
    p, q, b, a, e = tick.price, tick.qty, tick.bid, tick.ask, tick.event_id
    body = (
        f"{tick.exchange}|{tick.symbol}|{tick.kind}|{tick.seq if seq is None else seq}|"
        f"{tick.exchange_ts_ms}|{tick.received_ts_us}|{'' if p is None else str(p)}|"
        f"{'' if q is None else str(q)}|{'' if b is None else str(b)}|"
        f"{'' if a is None else str(a)}|{'' if e is None else e}"
    )
    if tick.flags:
        return f"2|{body}|{FLAG_SEPARATOR.join(tick.flags)}".encode()
    return f"1|{body}".encode()


def decode_tick(data: bytes) -> Tick:
    """Inverse of :func:`encode_tick`.

    Raises:
        TickError: ``data`` is not a tick encoding this version understands.
    """
    fields = data.decode("utf-8", errors="replace").split(SEPARATOR)
    if _FIELD_COUNTS.get(fields[0]) != len(fields):
        raise _bad(data, _LAYOUTS)
    try:
        return Tick(
            fields[1],
            fields[2],
            cast(TickKind, fields[3]),
            int(fields[5]),
            int(fields[6]),
            Decimal(fields[7]) if fields[7] else None,
            Decimal(fields[8]) if fields[8] else None,
            Decimal(fields[9]) if fields[9] else None,
            Decimal(fields[10]) if fields[10] else None,
            int(fields[11]) if fields[11] else None,
            int(fields[4]),
            tuple(fields[12].split(FLAG_SEPARATOR)) if len(fields) > FIELD_COUNT else (),
        )
    except TickError as exc:
        raise _bad(data, str(exc)) from None
    except (ValueError, InvalidOperation) as exc:
        raise _bad(data, repr(exc)) from None


def peek_identity(data: bytes) -> tuple[str, str, str, int]:
    """``(exchange, symbol, kind, seq)`` of encoded tick bytes, without decoding the rest.

    Raises:
        TickError: ``data`` does not start like a tick encoding.
    """
    head = data.split(_BSEP, 5)
    if len(head) != 6 or not data.startswith(_VERSION_PREFIXES):
        raise _bad(data, "expected 'version|exchange|symbol|kind|seq|...'")
    try:
        return head[1].decode(), head[2].decode(), head[3].decode(), int(head[4])
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(data, repr(exc)) from None


def decimal_field(data: bytes, name: str) -> Decimal | None:
    """One decimal field (``price``, ``qty``, ``bid``, ``ask``) of encoded tick bytes.

    Cheaper than :func:`decode_tick` when only the price is wanted.

    Raises:
        TickError: ``name`` is not a decimal field, or ``data`` is not a tick encoding.
    """
    if name not in DECIMAL_FIELDS:
        raise TickError(f"{name!r} is not a decimal tick field; use one of {DECIMAL_FIELDS}.")
    fields = data.split(_BSEP)
    if _BYTE_COUNTS.get(fields[0]) != len(fields):
        raise _bad(data, _LAYOUTS)
    text = fields[7 + DECIMAL_FIELDS.index(name)]
    try:
        return Decimal(text.decode()) if text else None
    except (UnicodeDecodeError, InvalidOperation) as exc:
        raise _bad(data, repr(exc)) from None


_LAYOUTS = (f"expected {FIELD_COUNT} fields starting with version {FORMAT_VERSION}, or "
            f"{FIELD_COUNT + 1} starting with version {FLAGGED_VERSION}")


def _bad(data: bytes, reason: str) -> TickError:
    shown = data[:120] + (b"..." if len(data) > 120 else b"")
    return TickError(
        f"Not a tick encoding (versions {FORMAT_VERSION} and {FLAGGED_VERSION}): {shown!r}: "
        f"{reason}. Only bytes written by storage.hot.codec.encode_tick can be decoded."
    )
