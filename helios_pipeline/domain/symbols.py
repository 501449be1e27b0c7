"""The one converter between ccxt unified symbols (``BTC/USDT``) and storage ids (``BTCUSDT``).

Nothing else in the code base formats or parses symbols.
"""

from __future__ import annotations

import re

# Quote currencies recognised when a storage id has to be split back into base and quote;
# longest first so that ``USDT`` wins over ``USD``.
KNOWN_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BRL",
    "BTC", "ETH", "BNB",
)
_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")


class SymbolError(ValueError):
    """A symbol or storage id is not in a form the platform understands."""


def to_storage_id(symbol: str, exchange: str | None = None) -> str:
    """Storage id for a unified symbol: ``BTC/USDT`` -> ``BTCUSDT``.

    Args:
        symbol: ccxt unified spot symbol, ``BASE/QUOTE``.
        exchange: When given, the id is exchange-qualified (``binance.BTCUSDT``); used where
            several exchanges are configured.

    Raises:
        SymbolError: ``symbol`` is not ``BASE/QUOTE`` with alphanumeric assets.
    """
    base, quote = split_symbol(symbol)
    plain = f"{base}{quote}"
    return f"{exchange.lower()}.{plain}" if exchange else plain


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote of a unified symbol ``BASE/QUOTE`` (upper-cased).

    Raises:
        SymbolError: ``symbol`` is not of that form.
    """
    parts = symbol.strip().upper().split("/")
    if len(parts) != 2 or not all(_ASSET.match(p) for p in parts):
        raise SymbolError(
            f"Bad symbol {symbol!r}: expected a ccxt unified spot symbol such as 'BTC/USDT'."
        )
    return parts[0], parts[1]


def from_storage_id(storage_id: str) -> str:
    """Unified symbol for a storage id: ``BTCUSDT`` (or ``binance.BTCUSDT``) -> ``BTC/USDT``.

    Raises:
        SymbolError: The id does not end in a known quote currency.
    """
    plain = storage_id.rsplit(".", 1)[-1].upper()
    for quote in KNOWN_QUOTES:
        base = plain[: -len(quote)]
        if plain.endswith(quote) and base and _ASSET.match(base):
            return f"{base}/{quote}"
    raise SymbolError(
        f"Cannot split storage id {storage_id!r} into base and quote: it does not end in a known "
        f"quote currency ({', '.join(KNOWN_QUOTES)})."
    )


def normalize_symbol(text: str) -> str:
    """Unified symbol for user input in either form (``btc/usdt``, ``BTCUSDT``)."""
    cleaned = text.strip().upper()
    if "/" in cleaned:
        base, quote = split_symbol(cleaned)
        return f"{base}/{quote}"
    return from_storage_id(cleaned)
