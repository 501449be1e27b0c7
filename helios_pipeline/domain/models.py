"""Frozen market-data records shared by every layer (seed schema, exact ``Decimal`` money)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from helios_pipeline.domain.timeframe import Timeframe


@dataclass(frozen=True, slots=True)
class MarketDataPoint:
    """One ticker observation of a symbol on an exchange.

    Attributes:
        symbol: ccxt unified symbol, ``BTC/USDT``.
        timestamp: Exchange time of the observation, tz-aware UTC.
        price: Last traded price.
        volume: Base-asset volume of the rolling 24 h window the exchange reports.
        bid: Best bid.
        ask: Best ask.
        spread: ``ask - bid``.
        source: ccxt exchange id the point came from.
        quality_score: 0.0-1.0, filled by validation.
    """

    symbol: str
    timestamp: datetime
    price: Decimal
    volume: Decimal
    bid: Decimal
    ask: Decimal
    spread: Decimal
    source: str
    quality_score: float = 1.0
    price_change_1m: Decimal | None = None
    volume_avg_5m: Decimal | None = None
    volatility_1h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OHLCVData:
    """One candle, keyed by its open time.

    ``trades``, ``quote_volume`` and the taker fields are ``None`` when the venue does not report
    them; they are never invented.

    Attributes:
        symbol: ccxt unified symbol.
        timestamp: Open time of the candle, tz-aware UTC.
        timeframe: Candle length.
        open: First trade price.
        high: Highest trade price.
        low: Lowest trade price.
        close: Last trade price.
        volume: Base-asset volume.
        trades: Number of trades.
        taker_buy_volume: Base-asset volume bought by takers.
        quote_volume: Quote-asset volume.
        taker_buy_quote_volume: Quote-asset volume bought by takers.
        close_time_ms: Exchange-reported close time (ms); a candle cut short by an outage has a
            close time before ``open + length - 1``.
        is_validated: Set once the validation rules ran on the candle.
        validation_score: 0.0-1.0 quality score from validation.
        anomaly_flags: Names of the rules the candle broke softly.
    """

    symbol: str
    timestamp: datetime
    timeframe: Timeframe
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int | None
    taker_buy_volume: Decimal | None
    quote_volume: Decimal | None = None
    taker_buy_quote_volume: Decimal | None = None
    close_time_ms: int | None = None
    is_validated: bool = False
    validation_score: float = 1.0
    anomaly_flags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Market:
    """A spot market and its trading rules, as ``load_markets`` reports them.

    Attributes:
        exchange: ccxt exchange id.
        symbol: ccxt unified symbol.
        exchange_symbol: The venue's own id (``BTCUSDT``).
        base: Base asset.
        quote: Quote asset.
        active: Whether the venue is trading it.
        tick_size: Price increment (PRICE_FILTER.tickSize).
        lot_size: Quantity increment (LOT_SIZE.stepSize).
        min_qty: Smallest order quantity.
        max_qty: Largest order quantity.
        min_notional: Smallest order value in the quote asset.
    """

    exchange: str
    symbol: str
    exchange_symbol: str
    base: str
    quote: str
    active: bool
    tick_size: Decimal | None
    lot_size: Decimal | None
    min_qty: Decimal | None
    max_qty: Decimal | None
    min_notional: Decimal | None
