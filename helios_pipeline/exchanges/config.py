"""Where and how hard to call one exchange: what an ``ExchangeClient`` is built from."""

from __future__ import annotations

from dataclasses import dataclass, field

from helios_pipeline.security.credentials import CredentialSource

DEFAULT_BULK_URLS = {"binance": "https://data.binance.vision"}
"""Exchanges that publish a 1m kline archive in Binance's layout, and where."""


@dataclass(frozen=True)
class ExchangeConfig:
    """One exchange's connection settings.

    Attributes:
        exchange_id: ccxt exchange id (``binance``).
        base_url: Replaces the exchange's own address (the simulated exchange, a testnet or a
            proxy); ``None`` means the real exchange.
        max_in_flight: Requests in flight at once.
        timeout_s: Per-request timeout in seconds.
        qualifier: Exchange qualifier of storage ids (``okx.BTCUSDT``) for a second venue that
            shares the data root with the primary one; ``None`` keeps plain ids.
        credentials: The encrypted store the client reads ``apiKey``/``secret`` from (the only
            place it takes them from); ``None``: public endpoints only.
        bulk_url: The exchange's public kline archive (``exchanges.bulk_archive``) that
            backfills take closed periods from; ``None`` turns the bulk path off.
        weight_share: Share of the exchange's per-minute request weight this client's requests
            may take the IP's window to (lower priority than the live path); ``None``: all of
            the limiter's budget.
    """

    exchange_id: str
    base_url: str | None = None
    max_in_flight: int = 50
    timeout_s: float = 10.0
    qualifier: str | None = None
    credentials: CredentialSource | None = field(default=None, compare=False)
    bulk_url: str | None = None
    weight_share: float | None = None
