"""A live 1m candle: built by the stream service from trades, kept in the hot tier.

``realtime.candles`` builds them, ``storage.hot.live_candles`` stores them in Redis and
``realtime.reconcile`` compares them with the exchange's REST candles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class LiveCandle:
    """One emitted version of a 1m candle.

    Attributes:
        symbol: ccxt unified symbol.
        open_ms: Open time (the candle's timestamp), ms epoch UTC.
        open: First trade's price.
        high: Highest price.
        low: Lowest price.
        close: Last trade's price.
        volume: Sum of the trades' base quantities (exact).
        trades: Number of trades.
        first_trade_ms: Exchange time of the first trade.
        last_trade_ms: Exchange time of the last trade.
        version: 1 when the minute closed, +1 per amendment.
        amended: Whether a late trade changed (or, for a minute that closed empty, created) it.
        emitted_ms: Clock time at which this version was emitted.
        complete: False when trades of the minute may be missing (see the module docstring).
    """

    symbol: str
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int
    first_trade_ms: int
    last_trade_ms: int
    version: int
    amended: bool
    emitted_ms: int
    complete: bool = True

    def to_dict(self) -> dict[str, object]:
        """Plain dict; decimals as their exact strings."""
        data = asdict(self)
        for name in ("open", "high", "low", "close", "volume"):
            data[name] = str(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LiveCandle:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: A field is missing or malformed.
        """
        try:
            return cls(
                symbol=str(data["symbol"]), open_ms=_int(data["open_ms"]),
                open=Decimal(str(data["open"])), high=Decimal(str(data["high"])),
                low=Decimal(str(data["low"])), close=Decimal(str(data["close"])),
                volume=Decimal(str(data["volume"])), trades=_int(data["trades"]),
                first_trade_ms=_int(data["first_trade_ms"]),
                last_trade_ms=_int(data["last_trade_ms"]), version=_int(data["version"]),
                amended=bool(data["amended"]), emitted_ms=_int(data["emitted_ms"]),
                complete=bool(data.get("complete", True)),
            )
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"Not a live candle: {data!r} ({exc!r}).") from None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)
