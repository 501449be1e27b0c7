"""Markets and trading rules: load them from the exchange and keep them in the metadata store."""

from __future__ import annotations

from collections.abc import Sequence

from helios_pipeline.domain.models import Market
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.errors import UnknownSymbolError
from helios_pipeline.storage.metadata import MetadataStore


async def sync_markets(
    client: ExchangeClient, metadata: MetadataStore, required: Sequence[str] = ()
) -> list[Market]:
    """Load the exchange's spot markets, store them, and check that ``required`` symbols exist.

    Raises:
        UnknownSymbolError: A required symbol is not listed by the exchange.
    """
    markets = await client.load_markets()
    metadata.store_markets(markets)
    listed = {m.symbol for m in markets}
    for symbol in required:
        if symbol not in listed:
            raise UnknownSymbolError.for_symbol(symbol, client.exchange_id, sorted(listed))
    return markets
