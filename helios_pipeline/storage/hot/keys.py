"""Every Redis key the hot tier uses, in one place.

::

    helios:{exchange}:{STORAGE_ID}:{kind}         stream of ticks (``trade``, ``ticker``, ``book``)
    helios:{exchange}:{STORAGE_ID}:candle_1m      hash of live 1m candles (``live_candles``)
    helios:{exchange}:{STORAGE_ID}:indicators_{tf}  hash of the latest live indicators
                                                  (``live_indicators``)
    helios:{exchange}:{STORAGE_ID}:divergence     hash, the current divergence from the
                                                  reference venue (``divergence``)
    helios:{exchange}:latest                      hash, STORAGE_ID -> newest ticker
    helios:{exchange}:stream_health[-IofN]        hash, the stream service's health (``health``)
    helios:writer:{name}:position                 the log position Redis holds (``writer``)

Exchange ids are lower-cased; ``STORAGE_ID`` is ``domain.symbols.to_storage_id`` (``BTCUSDT``).
Nothing else in the code base formats a Redis key.
"""

from __future__ import annotations

import functools

from helios_pipeline.domain.symbols import to_storage_id

PREFIX = "helios"
CANDLE_KIND = "candle_1m"


@functools.lru_cache(maxsize=65536)
def stream_key(exchange: str, symbol: str, kind: str) -> str:
    """Redis stream of one symbol and kind: ``helios:binance:BTCUSDT:trade``.

    Raises:
        SymbolError: ``symbol`` is not a ccxt unified symbol.
    """
    return f"{PREFIX}:{exchange.lower()}:{to_storage_id(symbol)}:{kind}"


def candle_key(exchange: str, symbol: str) -> str:
    """Hash of one symbol's live 1m candles: ``helios:binance:BTCUSDT:candle_1m``."""
    return stream_key(exchange, symbol, CANDLE_KIND)


def indicator_key(exchange: str, symbol: str, timeframe: str) -> str:
    """Hash of one symbol's latest live indicators: ``helios:binance:BTCUSDT:indicators_5m``."""
    return stream_key(exchange, symbol, f"indicators_{timeframe}")


def divergence_key(exchange: str, symbol: str) -> str:
    """Hash of one symbol's current divergence: ``helios:binance:BTCUSDT:divergence``."""
    return stream_key(exchange, symbol, "divergence")


def latest_key(exchange: str) -> str:
    """Hash of an exchange's newest tickers: ``helios:binance:latest``."""
    return f"{PREFIX}:{exchange.lower()}:latest"


def health_key(exchange: str, shard_suffix: str = "") -> str:
    """Hash of the stream service's health: ``helios:binance:stream_health`` (``-1of2``...)."""
    return f"{PREFIX}:{exchange.lower()}:stream_health{shard_suffix}"


def marker_key(writer_name: str) -> str:
    """The log position Redis holds for one durable writer: ``helios:writer:{name}:position``."""
    return f"{PREFIX}:writer:{writer_name}:position"
