"""Async market-data client for one exchange: markets, candles and tickers through ccxt REST.

Every request goes through :class:`~helios_pipeline.exchanges.resilient.ResilientCaller`
(circuit breaker, rate limiter fed by the exchange's headers, in-flight cap, retries). The
status and headers of *every* HTTP response reach it through a subclass of the ccxt exchange
class (``ccxt_adapter``), rather than ccxt's shared ``last_response_headers``, which concurrent
calls would mix up.

Candle open/closed decisions use this process's clock: the exchange's clock is assumed to be
within a few seconds of ours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import pyarrow as pa

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.models import Market, MarketDataPoint, OHLCVData
from helios_pipeline.domain.schema import EXCHANGE_SCHEMA
from helios_pipeline.domain.symbols import SymbolError, normalize_symbol
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms, ms_to_datetime
from helios_pipeline.exchanges import ccxt_adapter as adapter
from helios_pipeline.exchanges.breaker import CircuitBreaker
from helios_pipeline.exchanges.candle_window import CHUNK_CANDLES, CandleBatch, CandleWindow
from helios_pipeline.exchanges.config import ExchangeConfig
from helios_pipeline.exchanges.errors import ExchangeDataError, UnknownSymbolError
from helios_pipeline.exchanges.ratelimit import AdaptiveRateLimiter, Clock, Sleep
from helios_pipeline.exchanges.resilient import ResilientCaller
from helios_pipeline.exchanges.retry import RetryPolicy
from helios_pipeline.exchanges.shared import InFlightCap, shared_guards
from helios_pipeline.security.credentials import CredentialSource

T = TypeVar("T")

# Exchanges whose raw /api/v3/klines endpoint is read directly to keep all twelve fields.
RAW_KLINE_EXCHANGES = frozenset({"binance", "binanceus"})
_WEIGHTS = {"exchangeInfo": 20, "klines": 2, "ticker": 2}


async def _gather_all(coros: Sequence[Awaitable[T]]) -> list[T]:
    """Run all ``coros``; on the first failure cancel the rest and raise that failure."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class ExchangeClient:
    """Async market-data client for one exchange.

    Args:
        exchange_id: ccxt exchange id (``binance``).
        base_url: Replaces the exchange's own address, e.g. ``http://127.0.0.1:8080`` for the
            simulated exchange (``HELIOS_EXCHANGE_URL``).
        max_in_flight: Requests in flight at once.
        timeout_s: Per-request timeout.
        retry: Retry policy; default :class:`RetryPolicy()`.
        breaker: Circuit breaker; default one for ``exchange_id`` with default windows.
        limiter: Rate limiter; default one for ``exchange_id`` (6000 weight/min, 80 %).
        clock: Wall-clock seconds since the epoch; decides which candles are still open.
        sleep: Coroutine used for retry backoff waits.
        qualifier: Exchange qualifier for storage ids (``okx.BTCUSDT``) where several
            exchanges share a data root; ``None`` (default) keeps plain ids.
        cap: Cap on requests in flight (default: a new one of ``max_in_flight``).
        credentials: The encrypted credential store: the client's only source of ``apiKey``,
            ``secret`` and ``password`` (``None``: public endpoints only).
        weight_share: Share of the per-minute request weight (as the exchange counts it for this
            IP) up to which this client's requests go; above it they wait for the next window.
            Batch clients pass ``Settings.batch_weight_share`` so the live path keeps the rest;
            ``None``: the limiter's whole budget.

    Raises:
        ValueError: Unknown exchange id or ``max_in_flight`` < 1.
    """

    def __init__(
        self,
        exchange_id: str,
        base_url: str | None = None,
        max_in_flight: int = 50,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: AdaptiveRateLimiter | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        qualifier: str | None = None,
        cap: InFlightCap | None = None,
        credentials: CredentialSource | None = None,
        weight_share: float | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.base_url = base_url
        self.qualifier = qualifier
        self._clock = clock
        self._caller = ResilientCaller(
            exchange_id, base_url, cap or InFlightCap(max_in_flight), retry or RetryPolicy(),
            breaker or CircuitBreaker(exchange_id), limiter or AdaptiveRateLimiter(exchange_id),
            clock, sleep, weight_share,
        )
        self._call = self._caller.call
        self._markets_lock = asyncio.Lock()
        self._markets_loaded = False
        config: dict[str, Any] = {
            # Our limiter replaces ccxt's throttle where weight headers exist (Binance); other
            # venues are paced by ccxt to their published limits (OKX: 20 pages per 2 s).
            "enableRateLimit": exchange_id not in RAW_KLINE_EXCHANGES,
            "timeout": int(timeout_s * 1000),
            # Once keys are set, ccxt also reads currencies and margin pairs from private
            # wallet endpoints; market data needs only the spot markets.
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                        "fetchMargins": False},
        }
        if credentials is not None:
            config.update(credentials.exchange_credentials(exchange_id))
        self._exchange: Any = adapter.create_exchange(
            exchange_id, config, self._caller.on_response, self._caller.limiter.configure
        )
        if base_url:
            adapter.override_urls(self._exchange.urls, base_url)

    @classmethod
    def from_config(cls, config: ExchangeConfig, *, shared: bool = False) -> ExchangeClient:
        """Client for ``config`` (``Settings.exchange_config()`` gives the configured one).

        Args:
            config: The exchange and its limits.
            shared: Use the process-wide breaker, limiter and in-flight cap of this exchange
                (``exchanges.shared``) instead of new ones: what every client of a long-lived
                process (Dagster) should do.
        """
        guards = (shared_guards(config.exchange_id, config.base_url, config.max_in_flight)
                  if shared else None)
        return cls(
            config.exchange_id, base_url=config.base_url, max_in_flight=config.max_in_flight,
            timeout_s=config.timeout_s, qualifier=config.qualifier,
            breaker=guards.breaker if guards else None,
            limiter=guards.limiter if guards else None, cap=guards.cap if guards else None,
            credentials=config.credentials, weight_share=config.weight_share,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._exchange.close()

    @property
    def source(self) -> str:
        """Where data comes from, for catalogs: ``binance`` or ``binance@http://127.0.0.1:8081``."""
        return f"{self.exchange_id}@{self.base_url}" if self.base_url else self.exchange_id

    @property
    def breaker(self) -> CircuitBreaker:
        """This exchange's circuit breaker."""
        return self._caller.breaker

    @property
    def limiter(self) -> AdaptiveRateLimiter:
        """This exchange's rate limiter."""
        return self._caller.limiter

    @property
    def retries(self) -> int:
        """Attempts repeated after a failure, over the client's life."""
        return self._caller.retries

    def health(self) -> dict[str, Any]:
        """Breaker and limiter snapshots plus counters.

        ``requests_sent`` counts HTTP requests made, ``retries`` attempts repeated after a
        failure, ``failures`` failed attempts of any kind, ``peak_in_flight`` the most requests
        that were in flight at once.
        """
        caller = self._caller
        return {
            "exchange": self.exchange_id,
            "base_url": self.base_url,
            "requests_sent": caller.requests_sent,
            "retries": caller.retries,
            "failures": caller.failures,
            "in_flight": caller.in_flight,
            "peak_in_flight": caller.peak_in_flight,
            "breaker": caller.breaker.snapshot(),
            "limiter": caller.limiter.snapshot(),
        }

    # ----------------------------------------------------------------- public market data

    async def load_markets(self, reload: bool = False) -> list[Market]:
        """The exchange's spot markets with their trading rules (exact decimals).

        Args:
            reload: Fetch again even when the markets are already loaded.
        """
        await self._ensure_markets(reload)
        markets = self._exchange.markets or {}
        return [
            adapter.market_from_ccxt(self.exchange_id, m, self._exchange.precisionMode)
            for m in markets.values()
            if m.get("spot", True)
        ]

    async def fetch_ohlcv(
        self, symbol: str, timeframe: Timeframe, start_ms: int, end_ms: int
    ) -> list[OHLCVData]:
        """All closed candles with open time in ``[start_ms, end_ms)``, sorted, no duplicates.

        The range is fetched in chunks of 1000 candles, concurrently (bounded by
        ``max_in_flight``). Candles still open by this process's clock are never returned (nor
        requested): a candle counts as closed once ``open_time + timeframe <= now``, which
        assumes the exchange's clock is within a few seconds of ours.

        Raises:
            UnknownSymbolError: The exchange has no such market.
            ExchangeDataError: A chunk stayed malformed over every attempt; nothing is returned.
            ExchangeUnavailableError: A chunk failed over every attempt.
            ValueError: ``end_ms`` is before ``start_ms``.
        """
        market, window = await self._window(symbol, timeframe, start_ms, end_ms)
        fetch = self._raw_chunk if self.exchange_id in RAW_KLINE_EXCHANGES else self._unified_chunk
        chunks = await _gather_all([fetch(market, timeframe, lo, hi) for lo, hi in window.pages()])
        return window.merge_candles(chunks)

    async def fetch_candles(
        self, symbol: str, timeframe: Timeframe, start_ms: int, end_ms: int
    ) -> CandleBatch:
        """:meth:`fetch_ohlcv` for bulk loads: the same candles, parsed into Arrow columns.

        Binance kline pages are parsed in bulk straight into exact ``decimal128`` columns
        (``CandleBatch.table``); a page whose values need the exact per-row parser (and every
        page of other venues) comes back as ``OHLCVData`` (``CandleBatch.candles``), exactly as
        :meth:`fetch_ohlcv` returns it. Same closedness rule, same errors.
        """
        market, window = await self._window(symbol, timeframe, start_ms, end_ms)
        if self.exchange_id not in RAW_KLINE_EXCHANGES:
            chunks = await _gather_all([self._unified_chunk(market, timeframe, lo, hi)
                                        for lo, hi in window.pages()])
            return CandleBatch(EXCHANGE_SCHEMA.empty_table(), window.merge_candles(chunks))
        pages = await _gather_all([self._raw_page(market, timeframe, lo, hi)
                                   for lo, hi in window.pages()])
        tables = [page for page in pages if isinstance(page, pa.Table)]
        exact = [page for page in pages if not isinstance(page, pa.Table)]
        table = window.merge_table(tables)
        in_table = set(table.column(TIMESTAMP).cast(pa.int64()).to_pylist()) if exact else set()
        candles = [c for c in window.merge_candles(exact)
                   if datetime_to_ms(c.timestamp) not in in_table]
        return CandleBatch(table, candles)

    async def _window(
        self, symbol: str, timeframe: Timeframe, start_ms: int, end_ms: int
    ) -> tuple[dict[str, Any], CandleWindow]:
        if end_ms < start_ms:
            raise ValueError(
                f"fetch_ohlcv {symbol}: end_ms={end_ms} is before start_ms={start_ms}."
            )
        market = await self._market(symbol)
        return market, CandleWindow(timeframe, start_ms, end_ms, int(self._clock() * 1000))

    async def fetch_ticker(self, symbol: str) -> MarketDataPoint:
        """The current ticker of one symbol (exact bid/ask/spread).

        Raises:
            UnknownSymbolError: The exchange has no such market.
            ExchangeDataError: The ticker lacks a price, bid, ask or volume.
        """
        market = await self._market(symbol)
        unified = market["symbol"]
        ticker = await self._call(f"ticker {market['id']}", _WEIGHTS["ticker"],
                                  lambda: self._exchange.fetch_ticker(unified))
        return adapter.ticker_point(ticker, unified, self.exchange_id, self._clock())

    async def fetch_tickers(self, symbols: Sequence[str]) -> dict[str, MarketDataPoint]:
        """Current tickers of many symbols in one request, keyed by unified symbol.

        Raises:
            UnknownSymbolError: One of the symbols is not on the exchange.
            ExchangeDataError: The answer lacks a requested symbol or a ticker field.
        """
        if not symbols:
            return {}
        unified = [(await self._market(s))["symbol"] for s in symbols]
        tickers = await self._call(
            f"tickers ({len(unified)} symbols)", self._tickers_weight(len(unified)),
            lambda: self._exchange.fetch_tickers(unified),
        )
        now_s = self._clock()
        points: dict[str, MarketDataPoint] = {}
        for name in unified:
            if not isinstance(tickers, dict) or name not in tickers:
                raise ExchangeDataError(f"the tickers answer has no entry for {name}",
                                        f"{self.exchange_id} fetch_tickers", tickers)
            points[name] = adapter.ticker_point(tickers[name], name, self.exchange_id, now_s)
        return points

    # ----------------------------------------------------------------- markets and symbols

    async def _ensure_markets(self, reload: bool = False) -> None:
        async with self._markets_lock:
            if self._markets_loaded and not reload:
                return
            await self._call("exchangeInfo", _WEIGHTS["exchangeInfo"],
                             lambda: self._exchange.load_markets(True))
            self._markets_loaded = True

    async def _market(self, symbol: str) -> dict[str, Any]:
        """The loaded ccxt market for ``symbol`` (loading markets once).

        Raises:
            UnknownSymbolError: No such market.
        """
        await self._ensure_markets()
        try:
            unified = normalize_symbol(symbol)
        except SymbolError:
            unified = symbol.strip().upper()
        markets: dict[str, Any] = self._exchange.markets or {}
        if unified not in markets:
            raise UnknownSymbolError(self.exchange_id, symbol, markets.keys())
        market: dict[str, Any] = markets[unified]
        return market

    def _tickers_weight(self, count: int) -> int:
        if self.exchange_id not in RAW_KLINE_EXCHANGES:
            return 1
        return 2 if count <= 20 else 40 if count <= 100 else 80

    # ----------------------------------------------------------------- candles

    async def _raw_chunk(
        self, market: Mapping[str, Any], timeframe: Timeframe, lo: int, hi: int
    ) -> list[tuple[int, OHLCVData]]:
        """One page of Binance's raw klines (all twelve fields), parsed inside the attempt."""
        symbol = market["symbol"]
        return await self._klines(market, timeframe, lo, hi,
                                  lambda rows, where: adapter.kline_rows(rows, symbol, timeframe,
                                                                         where))

    async def _raw_page(
        self, market: Mapping[str, Any], timeframe: Timeframe, lo: int, hi: int
    ) -> pa.Table | list[tuple[int, OHLCVData]]:
        """One page of raw klines, parsed in bulk when it can be, else row by row."""
        symbol = market["symbol"]

        def parse(rows: object, where: str) -> pa.Table | list[tuple[int, OHLCVData]]:
            table = adapter.kline_table(rows) if isinstance(rows, list) else None
            return table if table is not None else adapter.kline_rows(rows, symbol, timeframe,
                                                                      where)

        return await self._klines(market, timeframe, lo, hi, parse)

    async def _klines(
        self, market: Mapping[str, Any], timeframe: Timeframe, lo: int, hi: int,
        parse: Callable[[object, str], T],
    ) -> T:
        """Request one page of klines and parse it inside the attempt (malformed: retried)."""
        params = {"symbol": market["id"], "interval": timeframe.value, "startTime": lo,
                  "endTime": hi - 1, "limit": CHUNK_CANDLES}

        async def attempt() -> T:
            rows: object = await self._exchange.public_get_klines(params)
            return parse(rows, f"{self.exchange_id} klines {market['symbol']} "
                               f"({adapter.current_url()})")

        endpoint = f"klines {market['id']} {timeframe.value} from {ms_to_datetime(lo).isoformat()}"
        return await self._call(endpoint, _WEIGHTS["klines"], attempt)

    async def _unified_chunk(
        self, market: Mapping[str, Any], timeframe: Timeframe, lo: int, hi: int
    ) -> list[tuple[int, OHLCVData]]:
        """Candles in ``[lo, hi)`` via unified ``fetch_ohlcv``, page after page.

        A short page comes from the start of the window on Binance-like venues and from its
        end on OKX (newest first, 100 or 300 a page), so each page splits its window into the
        parts before and after it, asked for again until they come back empty.
        """
        out: dict[int, OHLCVData] = {}
        windows = [(lo, hi)]
        while windows:
            start, end = windows.pop()
            page = [p for p in await self._unified_page(market, timeframe, start, end)
                    if start <= p[0] < end]
            if not page:
                continue
            out.update((open_ms, candle) for open_ms, candle in page if open_ms not in out)
            first, last = min(p[0] for p in page), max(p[0] for p in page)
            if start < first:
                windows.append((start, first))
            if last + timeframe.ms < end:
                windows.append((last + timeframe.ms, end))
        return sorted(out.items())

    async def _unified_page(
        self, market: Mapping[str, Any], timeframe: Timeframe, since: int, hi: int
    ) -> list[tuple[int, OHLCVData]]:
        symbol = market["symbol"]

        async def attempt() -> list[tuple[int, OHLCVData]]:
            rows = await self._exchange.fetch_ohlcv(
                symbol, timeframe.value, since, CHUNK_CANDLES, {"until": hi - 1}
            )
            source = f"{self.exchange_id} fetch_ohlcv {symbol} ({adapter.current_url()})"
            return adapter.unified_rows(rows, symbol, timeframe, source)

        return await self._call(f"ohlcv {symbol} {timeframe.value}", 1, attempt)
