"""The realtime tick record: one trade, ticker or book top of a symbol on an exchange.

Prices and sizes are exact ``Decimal`` values. The one wire encoding of a tick (the write-ahead
log's records and the Redis hot tier's entries) lives in ``storage.hot.codec``.

Identity: a tick is identified by ``(exchange, symbol, kind, seq)``. ``seq`` is assigned by the
hot tier's writer (``storage.hot.writer``), strictly increasing per ``(exchange, symbol, kind)``;
``0`` means "not assigned yet". The writer makes it a hybrid clock,
``max(previous + 1, received_ts_us)``, so it also reads as a receive time in microseconds.

Flags: the soft validation rules a kept tick broke (``validation.rules``, e.g.
``cross_exchange_divergence`` when the stream service watches a reference venue), attached by
the stream service before the tick is written; they travel with the tick into the hot tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, cast

TickKind = Literal["trade", "ticker", "book"]
KINDS: tuple[TickKind, ...] = ("trade", "ticker", "book")

# The encoding separates fields with it, so no identity field may contain it.
SEPARATOR = "|"
DECIMAL_FIELDS = ("price", "qty", "bid", "ask")
FLAG_SEPARATOR = ","


class TickError(ValueError):
    """A tick cannot be built, encoded or decoded; the message names the offending input."""


@dataclass(frozen=True, slots=True)
class Tick:
    """One realtime observation of a symbol on an exchange: a trade, a ticker or a book top.

    Attributes:
        exchange: ccxt exchange id, ``binance``.
        symbol: ccxt unified symbol, ``BTC/USDT``.
        kind: ``trade``, ``ticker`` or ``book``.
        exchange_ts_ms: Exchange time of the event, millisecond epoch (UTC).
        received_ts_us: When this process received it, microsecond epoch (UTC).
        price: Trade price (trade), last price (ticker); ``None`` for a book top.
        qty: Trade quantity (trade), rolling 24 h base volume (ticker), ``None`` if not reported.
        bid: Best bid (ticker, book).
        ask: Best ask (ticker, book).
        event_id: The exchange's trade id (trade) or order-book update id (ticker, book).
        seq: Writer-assigned sequence number, strictly increasing per (exchange, symbol, kind);
            ``0`` until the writer assigns one.
        flags: Soft rules the tick broke (rule names, in rule order); empty for a clean tick.
    """

    exchange: str
    symbol: str
    kind: TickKind
    exchange_ts_ms: int
    received_ts_us: int
    price: Decimal | None = None
    qty: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    event_id: int | None = None
    seq: int = 0
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject values the encoding could not carry (kept cheap: this is the hot path)."""
        if self.kind not in KINDS:
            raise TickError(f"Tick kind {self.kind!r} is not one of {', '.join(KINDS)}.")
        if SEPARATOR in self.exchange or SEPARATOR in self.symbol:
            raise TickError(
                f"Tick exchange {self.exchange!r} / symbol {self.symbol!r} contains "
                f"{SEPARATOR!r}: use the ccxt exchange id and unified symbol ('BTC/USDT')."
            )
        if self.flags and any(not f or SEPARATOR in f or FLAG_SEPARATOR in f
                              for f in self.flags):
            raise TickError(f"Tick flags {self.flags!r}: give rule names such as "
                            "'cross_exchange_divergence' (no empty name, '|' or ',').")

    @property
    def identity(self) -> tuple[str, str, str, int]:
        """``(exchange, symbol, kind, seq)``: what makes two ticks the same tick."""
        return (self.exchange, self.symbol, self.kind, self.seq)

    def with_seq(self, seq: int) -> Tick:
        """This tick with ``seq`` assigned."""
        return Tick(
            self.exchange, self.symbol, self.kind, self.exchange_ts_ms, self.received_ts_us,
            self.price, self.qty, self.bid, self.ask, self.event_id, seq, self.flags,
        )

    def with_flags(self, flags: tuple[str, ...]) -> Tick:
        """This tick with ``flags`` (soft rule names) attached."""
        return Tick(
            self.exchange, self.symbol, self.kind, self.exchange_ts_ms, self.received_ts_us,
            self.price, self.qty, self.bid, self.ask, self.event_id, self.seq, flags,
        )

    def to_dict(self) -> dict[str, str | int | None]:
        """Plain dict: decimals as their exact strings, absent values as ``None``."""
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "kind": self.kind,
            "exchange_ts_ms": self.exchange_ts_ms,
            "received_ts_us": self.received_ts_us,
            "price": _dec_text(self.price),
            "qty": _dec_text(self.qty),
            "bid": _dec_text(self.bid),
            "ask": _dec_text(self.ask),
            "event_id": self.event_id,
            "seq": self.seq,
            "flags": FLAG_SEPARATOR.join(self.flags) or None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | int | None]) -> Tick:
        """Inverse of :meth:`to_dict`.

        Raises:
            TickError: A field is missing or not of the expected form; the message names it.
        """
        try:
            decimals = {name: _parse_dec(data.get(name)) for name in DECIMAL_FIELDS}
            event_id = data.get("event_id")
            flags = data.get("flags")
            return cls(
                exchange=str(data["exchange"]),
                symbol=str(data["symbol"]),
                kind=cast(TickKind, data["kind"]),
                exchange_ts_ms=int(cast(int, data["exchange_ts_ms"])),
                received_ts_us=int(cast(int, data["received_ts_us"])),
                event_id=None if event_id is None else int(event_id),
                seq=int(cast(int, data.get("seq", 0))),
                flags=tuple(str(flags).split(FLAG_SEPARATOR)) if flags else (),
                **decimals,
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            if isinstance(exc, TickError):
                raise
            raise TickError(
                f"Cannot build a tick from {data!r}: {exc!r}; give every field of Tick.to_dict()."
            ) from None


def _dec_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _parse_dec(value: str | int | None) -> Decimal | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TickError(f"Decimal tick field {value!r} must be a string such as '42000.10'.")
    return Decimal(value)
