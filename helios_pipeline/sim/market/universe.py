"""Symbols the simulated exchange lists and their trading rules (tick, lot, min notional).

A :class:`SymbolSpec` is a pure function of the symbol: reference prices for well-known assets,
everything else derived from a stable hash of the name, so any symbol gets plausible rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from helios_pipeline.domain.symbols import from_storage_id, split_symbol
from helios_pipeline.sim.wire import SCALE, fmt8, unit_interval

# Rough USD prices (2024) so that the seeded market looks like the real one.
_REFERENCE_USD: dict[str, float] = {
    "BTC": 60000.0, "ETH": 3000.0, "BNB": 580.0, "SOL": 150.0, "XRP": 0.6, "ADA": 0.45,
    "DOGE": 0.12, "TRX": 0.12, "DOT": 6.5, "POL": 0.5, "LTC": 75.0, "AVAX": 30.0, "LINK": 14.0,
    "ATOM": 7.0, "UNI": 8.0, "XLM": 0.1, "ETC": 25.0, "BCH": 400.0, "FIL": 5.0, "APT": 8.0,
    "ARB": 0.8, "OP": 1.8, "NEAR": 5.0, "ICP": 9.0, "HBAR": 0.07, "VET": 0.03, "INJ": 22.0,
    "SUI": 1.0, "SEI": 0.35, "TIA": 6.0, "AAVE": 100.0, "GRT": 0.2, "ALGO": 0.15, "SAND": 0.3,
    "MANA": 0.3, "AXS": 6.0, "EGLD": 30.0, "THETA": 1.4, "XTZ": 0.8, "EOS": 0.6, "CHZ": 0.07,
    "CRV": 0.3, "LDO": 1.5, "RUNE": 4.0, "IMX": 1.5, "STX": 1.7, "PEPE": 0.00001,
    "SHIB": 0.00002, "WLD": 2.0, "FET": 1.2, "RENDER": 6.0, "GALA": 0.025, "KAVA": 0.4,
    "ZEC": 30.0, "DASH": 27.0, "NEO": 11.0, "QNT": 70.0, "EUR": 1.08, "GBP": 1.27, "TRY": 0.03,
    "BRL": 0.18,
}
_STABLES = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD"})
# Daily traded value in USD for the busiest pairs; others are derived from the hash.
_DAILY_USD: dict[str, float] = {"BTC": 1.5e9, "ETH": 8e8, "SOL": 4e8, "BNB": 2e8, "XRP": 2e8}

_USDT_BASES = (
    "BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "TRX", "DOT", "POL", "LTC", "AVAX", "LINK",
    "ATOM", "UNI", "XLM", "ETC", "BCH", "FIL", "APT", "ARB", "OP", "NEAR", "ICP", "HBAR", "VET",
    "INJ", "SUI", "SEI", "TIA", "AAVE", "GRT", "ALGO", "SAND", "MANA", "AXS", "EGLD", "THETA",
    "XTZ", "EOS", "CHZ", "CRV", "LDO", "RUNE", "IMX", "STX", "PEPE", "SHIB", "WLD", "FET",
    "RENDER", "GALA", "KAVA", "ZEC", "DASH", "NEO", "QNT", "USDC",
)
_BTC_BASES = (
    "ETH", "BNB", "SOL", "XRP", "ADA", "LTC", "LINK", "DOT", "DOGE", "AVAX",
)

DEFAULT_SYMBOLS: tuple[str, ...] = tuple(
    [f"{b}USDT" for b in _USDT_BASES] + [f"{b}BTC" for b in _BTC_BASES]
)
"""Exchange ids (``BTCUSDT``) listed by default: real USDT and BTC spot pairs."""


@dataclass(frozen=True)
class SymbolSpec:
    """Trading rules and market character of one simulated spot symbol.

    Attributes:
        symbol: Exchange id, ``BTCUSDT``.
        base: Base asset.
        quote: Quote asset.
        tick_units: Price increment in 1e-8 units.
        step_units: Quantity increment in 1e-8 units.
        min_notional_units: Smallest order value in 1e-8 quote units.
        base_price: Typical price in the quote asset (centre of the seeded random walk).
        daily_notional: Typical traded value per day, in the quote asset.
        daily_vol: Typical daily log-return standard deviation.
        avg_trade_notional: Typical value of one trade, in the quote asset.
    """

    symbol: str
    base: str
    quote: str
    tick_units: int
    step_units: int
    min_notional_units: int
    base_price: float
    daily_notional: float
    daily_vol: float
    avg_trade_notional: float

    @property
    def unified(self) -> str:
        """Unified (ccxt) symbol, ``BTC/USDT``."""
        return f"{self.base}/{self.quote}"

    @property
    def tick(self) -> float:
        """Tick size as a float (for generating prices, never for output)."""
        return self.tick_units / SCALE

    @property
    def step(self) -> float:
        """Step size as a float (for generating quantities, never for output)."""
        return self.step_units / SCALE


def usd_price(asset: str) -> float:
    """Reference USD price of an asset: known table, 1 for stablecoins, else hash-derived."""
    if asset in _STABLES:
        return 1.0
    if asset in _REFERENCE_USD:
        return _REFERENCE_USD[asset]
    return float(10 ** (-3 + 5 * unit_interval("usd", asset)))


def _power_units(exponent: int) -> int:
    """``10**exponent`` in 1e-8 units, clamped to the smallest representable increment."""
    return int(10 ** max(0, exponent + 8))


def _one_digit_units(value: float) -> int:
    """``value`` rounded to one significant digit, in 1e-8 units (at least one unit)."""
    exponent = math.floor(math.log10(value))
    mantissa: int = max(1, round(value / 10**exponent))
    return mantissa * _power_units(exponent)


@lru_cache(maxsize=8192)
def symbol_spec(symbol: str) -> SymbolSpec:
    """The rules for an exchange id (``BTCUSDT``) or unified symbol (``BTC/USDT``).

    Raises:
        SymbolError: The symbol cannot be split into base and quote.
    """
    base, quote = split_symbol(symbol) if "/" in symbol else split_symbol(from_storage_id(symbol))
    price = usd_price(base) / usd_price(quote)
    magnitude = math.floor(math.log10(price))
    u = unit_interval("spec", base, quote)
    daily_usd = _DAILY_USD.get(base, float(10 ** (6.5 + 2.0 * u)))
    return SymbolSpec(
        symbol=f"{base}{quote}",
        base=base,
        quote=quote,
        tick_units=_power_units(max(-8, min(-2, magnitude - 4))),
        step_units=_power_units(max(-8, min(0, -magnitude - 1))),
        min_notional_units=_one_digit_units(5.0 / usd_price(quote)),
        base_price=price,
        daily_notional=daily_usd / usd_price(quote),
        daily_vol=0.03 if base in _DAILY_USD else 0.04 + 0.03 * u,
        avg_trade_notional=(150.0 + 450.0 * unit_interval("trade", base))
        * (daily_usd / 1e7) ** 0.25 / usd_price(quote),
    )


def _filters(spec: SymbolSpec) -> list[dict[str, Any]]:
    magnitude = math.floor(math.log10(spec.base_price))
    max_price = _power_units(magnitude + 2)
    max_qty = 9 * _power_units(math.floor(math.log10(5e8 / spec.base_price)))
    return [
        {"filterType": "PRICE_FILTER", "minPrice": fmt8(spec.tick_units),
         "maxPrice": fmt8(max_price), "tickSize": fmt8(spec.tick_units)},
        {"filterType": "LOT_SIZE", "minQty": fmt8(spec.step_units), "maxQty": fmt8(max_qty),
         "stepSize": fmt8(spec.step_units)},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": fmt8(0), "maxQty": fmt8(max_qty // 10),
         "stepSize": fmt8(0)},
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
         "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
         "maxTrailingBelowDelta": 2000},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
         "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
        {"filterType": "NOTIONAL", "minNotional": fmt8(spec.min_notional_units),
         "applyMinToMarket": True, "maxNotional": fmt8(9_000_000 * SCALE),
         "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]


def exchange_info_entry(spec: SymbolSpec) -> dict[str, Any]:
    """One ``symbols[]`` entry of ``/api/v3/exchangeInfo``, fields in Binance's order."""
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": spec.quote == "USDT",
        "filters": _filters(spec),
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
