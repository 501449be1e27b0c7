"""ccxt.pro parsed items -> :class:`~helios_pipeline.domain.ticks.Tick`, exactly as sent.

Symbol and times come from ccxt's parsed trade or ticker. Money comes from the raw frame
(``info``) where its layout is known (Binance spot streams), after checking the raw fields have
the types the exchange sends (decimal strings, integer times): ccxt turns a ``"0"`` bid into
``None`` and derives a ticker's ``"0"`` last price from its open and change, and the storage
schema must hold what the exchange sent, not what was derived. Elsewhere ccxt's values are used
(``exchange.number = Decimal`` keeps them exact).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from helios_pipeline.domain.ticks import Tick, TickKind

# Binance spot streams: raw fields that must arrive as exact strings / integers, and where each
# tick value comes from. Money is taken from the frame itself, not from ccxt's parsed ticker:
# ccxt turns a "0" bid into None and derives a ticker's missing ("0") last price from its open
# and change, and the storage schema must hold what the exchange sent, not what was derived.
_STRICT: dict[str, dict[str, tuple[tuple[str, type], ...]]] = {
    "binance": {
        "trade": (("p", str), ("q", str), ("T", int), ("t", int)),
        "book": (("b", str), ("B", str), ("a", str), ("A", str), ("u", int)),
        "ticker": (("c", str), ("b", str), ("a", str), ("v", str), ("E", int)),
    },
}
_RAW_MONEY: dict[str, dict[str, dict[str, str]]] = {
    "binance": {
        "trade": {"price": "p", "qty": "q"},
        "book": {"bid": "b", "ask": "a"},
        "ticker": {"price": "c", "qty": "v", "bid": "b", "ask": "a"},
    },
}
_CCXT_MONEY: dict[str, dict[str, str]] = {
    "trade": {"price": "price", "qty": "amount"},
    "book": {"bid": "bid", "ask": "ask"},
    "ticker": {"price": "last", "qty": "baseVolume", "bid": "bid", "ask": "ask"},
}


def _money(value: object, name: str) -> Decimal | None:
    """An exact decimal (NaN included: validation rejects it), ``None`` if absent."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        return Decimal(value)
    raise ValueError(f"{name}={value!r} is not an exact decimal")


def _millis(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strict_fields(exchange_id: str, kind: str, info: object) -> None:
    """Raise if a raw money/time field the exchange sends as a string/int arrived otherwise."""
    expected = _STRICT.get(exchange_id, {}).get(kind, ())
    if not expected or not isinstance(info, dict):
        return
    wrong = [f"{name}={info.get(name)!r}" for name, kind_of in expected
             if name in info and (not isinstance(info[name], kind_of)
                                  or isinstance(info[name], bool))]
    if wrong:
        raise ValueError(f"raw field types changed ({', '.join(wrong)}): exact values needed")


def _money_fields(exchange_id: str, kind: str, item: dict[str, Any]) -> dict[str, Decimal | None]:
    """Tick money fields: the raw frame's strings where known (``_RAW_MONEY``), else ccxt's."""
    info = item.get("info")
    raw = _RAW_MONEY.get(exchange_id, {}).get(kind)
    if raw is not None and isinstance(info, dict):
        return {name: _money(info.get(key), key) for name, key in raw.items()}
    return {name: _money(item.get(key), key) for name, key in _CCXT_MONEY[kind].items()}


def to_tick(exchange_id: str, kind: TickKind, item: Any, received_us: int) -> Tick:
    """A tick from a ccxt parsed trade (``kind='trade'``) or ticker (``book``, ``ticker``).

    Symbol and times come from ccxt; money comes from the raw frame where its layout is known
    (Binance), exactly as sent. ``event_id`` is the trade id, the book update id, or a ticker's
    last trade id.

    Raises:
        ValueError: The item lacks a symbol or time, or a value is not exact.
    """
    if not isinstance(item, dict):
        raise ValueError(f"expected a parsed {kind}, got {type(item).__name__}")
    info = item.get("info")
    _strict_fields(exchange_id, kind, info)
    symbol = item.get("symbol")
    if not isinstance(symbol, str):
        raise ValueError(f"no symbol in {kind} (market id unknown?)")
    money = _money_fields(exchange_id, kind, item)
    if kind == "trade":
        ts = _millis(item.get("timestamp"))
        if ts is None:
            raise ValueError(f"trade timestamp {item.get('timestamp')!r} is not an integer")
        ident = item.get("id")
        event_id = int(ident) if isinstance(ident, str) and ident.isdigit() else None
        return Tick(exchange_id, symbol, kind, ts, received_us, money.get("price"),
                    money.get("qty"), event_id=event_id)
    raw = info if isinstance(info, dict) else {}
    # Tickers: the event time (E) when sent, else ccxt's; book tops carry no time (receipt).
    ts = _millis(raw.get("E")) or _millis(item.get("timestamp")) or received_us // 1000
    # Book tops: the book update id (u); 24 h tickers have none: their last trade id (L).
    update = _millis(raw.get("u")) or _millis(raw.get("L"))
    return Tick(exchange_id, symbol, kind, ts, received_us, money.get("price"), money.get("qty"),
                money.get("bid"), money.get("ask"), update)
