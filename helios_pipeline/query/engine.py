"""``MarketDataQuery``: ask by symbol, timeframe and time; never mind which tier holds the answer.

Usable from plain Python (``MarketDataQuery.from_env()``), from research notebooks and, through
``MarketDataQueryResource``, from Dagster assets. Every method checks its arguments and raises
:class:`~helios_pipeline.query.errors.QueryError` naming the one that is wrong. Identical calls
within a second are answered from :class:`~helios_pipeline.query.cache.QueryCache`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import redis

from helios_pipeline.domain.ticks import Tick, TickKind
from helios_pipeline.domain.timeframe import (
    MINUTE_MS,
    Bucket,
    Timeframe,
    day_start_ms,
    ms_to_datetime,
)
from helios_pipeline.query.args import (
    Moment,
    limit_arg,
    moment_ms,
    span_args,
    symbol_arg,
    timeframe_arg,
)
from helios_pipeline.query.cache import QueryCache
from helios_pipeline.query.candles import CandleReader, aggregate_tiered
from helios_pipeline.query.errors import QueryError, TierUnavailableError
from helios_pipeline.query.history import load_as_of
from helios_pipeline.query.indicators import WARMUP_BARS, indicators_with_warmup, live_frame
from helios_pipeline.query.sources import Span, tiered_frame
from helios_pipeline.query.ticks import hourly_files, tick_frame
from helios_pipeline.settings import Settings
from helios_pipeline.signals.profile import VolumeProfile, volume_profile
from helios_pipeline.storage.archive import CandleArchive
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.hot.divergence import DivergenceState, load_divergence
from helios_pipeline.storage.hot.live_indicators import load_live_indicators
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.ticker_files import ticker_table

_REDIS_DOWN = (redis.RedisError, OSError)


class MarketDataQuery:
    """Read API over every tier of one data root.

    Args:
        data_dir: Data root (``HELIOS_DATA_DIR``).
        exchange: The primary venue (``HELIOS_EXCHANGE``): its data lives in plain symbol
            folders; any other venue's in exchange-qualified ones (``okx.BTCUSDT``).
        redis_url: The hot tier; ``None`` reads files only.
        hot_retention_minutes: How far back Redis holds ticks and live candles.
        keep_versions: Earlier partition versions kept (for ``as_of``).
        start_date: No candle is older than this day (``HELIOS_START_DATE``); bounds ``limit``
            searches.
        cache_ttl_s: Lifetime of cached answers; 0 turns the cache off.
        clock_ms: Milliseconds since the epoch (tests pass a fixed clock).
        archive_url: The cold tier (``HELIOS_ARCHIVE_URL``); ``None``: ``{data_dir}/archive``.
    """

    def __init__(self, data_dir: Path | str, exchange: str = "binance", *,
                 redis_url: str | None = None, hot_retention_minutes: int = 90,
                 keep_versions: int = 5, start_date: str = "2017-08-17",
                 cache_ttl_s: float = 1.0, clock_ms: Callable[[], int] | None = None,
                 archive_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.archive = CandleArchive.for_data_dir(self.data_dir, archive_url)
        self.exchange = exchange.lower()
        self.store = CandleStore(self.data_dir, keep_versions=keep_versions)
        self.catalog = MetadataStore(metadata_path(self.data_dir))
        self.hot = None if redis_url is None else HotStore(
            redis_url, hot_retention_minutes * MINUTE_MS, exchange=self.exchange,
            socket_timeout_s=2.0)
        self.cache = QueryCache(cache_ttl_s)
        self._now = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._floor_ms = day_start_ms(datetime.fromisoformat(start_date).date())
        self._hot_ms = hot_retention_minutes * MINUTE_MS
        self._known: dict[str, set[str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> MarketDataQuery:
        """A query over the tiers ``settings`` names (``overrides``: constructor arguments)."""
        arguments: dict[str, Any] = {
            "exchange": settings.exchange, "redis_url": settings.redis_url,
            "hot_retention_minutes": settings.hot_retention_minutes,
            "keep_versions": settings.keep_versions, "start_date": settings.start_date,
            "archive_url": settings.archive_url,
        }
        return cls(settings.data_dir, **{**arguments, **overrides})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any
                 ) -> MarketDataQuery:
        """A query configured by the ``HELIOS_*`` environment variables."""
        return cls.from_settings(Settings.from_env(environ), **overrides)

    # -- prices and candles ----------------------------------------------------------------------

    def latest_price(self, symbol: str, exchange: str | None = None) -> Decimal | None:
        """Last price of the newest ticker the stream service wrote (hot tier), or ``None``.

        Raises:
            QueryError: Bad symbol.
            TierUnavailableError: No hot tier is configured, or Redis cannot be reached.
        """
        venue = self._venue(exchange)
        unified = symbol_arg(symbol)
        hot = self._hot()
        price: Decimal | None = self.cache.get(
            ("latest_price", venue, unified),
            lambda: self._redis(lambda: hot.latest_price(unified, exchange=venue)))
        return price

    def divergence(self, symbol: str, exchange: str | None = None) -> DivergenceState | None:
        """The stream service's current comparison of ``symbol`` with the reference venue.

        Written by ``helios stream`` when ``HELIOS_REFERENCE_EXCHANGE`` is set (method:
        ``realtime.divergence_watch``): both prices, their divergence, and whether an episode
        above ``max_divergence`` is open. ``None`` when no comparison is current (no reference
        venue, the stream stopped, or the venues' prices are not fresh together).

        Raises:
            QueryError: Bad symbol.
            TierUnavailableError: No hot tier is configured, or Redis cannot be reached.
        """
        venue, unified = self._venue(exchange), symbol_arg(symbol)
        hot = self._hot()
        state: DivergenceState | None = self.cache.get(
            ("divergence", venue, unified),
            lambda: self._redis(lambda: load_divergence(hot.client, venue, unified)))
        return state

    def ohlcv(self, symbol: str, timeframe: str | Timeframe = "1m", start: Moment | None = None,
              end: Moment | None = None, limit: int | None = None, exchange: str | None = None,
              as_float: bool = False, as_of: Moment | None = None) -> pd.DataFrame:
        """Closed candles with open times in ``[start, end)``, from whichever tiers hold them.

        Args:
            symbol: ccxt unified symbol (``BTC/USDT``).
            timeframe: A stored one (1m 5m 15m 1h 4h 1d) or any other ccxt length in m, h, d or
                w, aggregated from 1m on the fly (``30m``, ``2h``, ``1w``).
            start: First open time (default: ``limit`` candles back, or the first stored day).
            end: Open times before it (default and latest: now).
            limit: Only the last ``limit`` closed candles before ``end``.
            exchange: Venue (default: the primary one).
            as_float: Prices and volumes as float64 (fast, inexact) instead of ``Decimal``.
            as_of: Read the versions stored at this moment (daily files only; a re-fetch after
                it is not seen).

        Returns:
            Indexed by the UTC open time; the candle columns, ``tier`` (``warm``, ``archive``,
            ``current``, ``hot``: where each row came from) and the validation columns.

        Raises:
            QueryError: A bad argument or an unknown symbol; the message names it.
            VersionNotKeptError: ``as_of`` needs a version that was pruned.
        """
        venue, unified = self._venue(exchange), symbol_arg(symbol)
        frame_of = timeframe_arg(timeframe)
        count = limit_arg(limit)
        start_ms, end_ms = span_args(start, end, self._now())
        at_ms = moment_ms("as_of", as_of)
        self._require_known(unified, venue)
        # "until now" is one question for the cache's lifetime; an explicit end is exact.
        until = ("now", end_ms // 1000) if end is None else end_ms
        key = ("ohlcv", venue, unified, frame_of, start_ms, until, count, as_float, at_ms)
        frame: pd.DataFrame = self.cache.get(
            key, lambda: tiered_frame(self._candles(unified, venue, frame_of, start_ms, end_ms,
                                                    count, at_ms), as_float),
            self._generation())
        # the cached frame stays as computed, whatever the caller does (no cache: nothing to keep)
        return frame.copy() if self.cache.ttl_s else frame

    def volume_profile(self, symbol: str, start: Moment, end: Moment | None = None,
                       bins: int | None = 50, bin_size: float | Decimal | None = None,
                       exchange: str | None = None) -> VolumeProfile:
        """Volume by price over ``[start, end)`` from 1m candles (method: ``signals.profile``).

        Raises:
            QueryError: Bad arguments, or no candles in the window.
        """
        frame = self.ohlcv(symbol, "1m", start=start, end=end, exchange=exchange, as_float=True)
        try:
            return volume_profile(frame, None if bin_size is not None else bins,
                                  None if bin_size is None else float(bin_size))
        except ValueError as exc:
            raise QueryError(f"volume_profile({symbol!r}, {start!r}, {end!r}): {exc}") from None

    def indicators(self, symbol: str, timeframe: str | Timeframe = "1h",
                   start: Moment | None = None, end: Moment | None = None,
                   exchange: str | None = None, warmup: int = WARMUP_BARS,
                   short_ok: bool = False) -> pd.DataFrame:
        """RSI, MACD, Bollinger bands, ATR and ADX of the stored candles in ``[start, end)``.

        Computed by ``signals`` from the ``warmup`` candles before ``start`` onwards (method:
        ``query.indicators``), so a value does not depend on where the window starts. With
        ``short_ok``, too short a history gives NaN (warm-up) columns instead of an error.

        Raises:
            QueryError: Bad arguments, or too few candles for the longest indicator period.
        """
        def read(start: Moment | None, end: Moment | None, limit: int | None) -> pd.DataFrame:
            return self.ohlcv(symbol, timeframe, start=start, end=end, limit=limit,
                              exchange=exchange, as_float=True)

        label = f"indicators({symbol!r}, {timeframe!r}, {start!r}, {end!r})"
        return indicators_with_warmup(read, label, start, end, warmup, short_ok=short_ok)

    def latest_indicators(self, symbol: str, timeframe: str | Timeframe = "1m",
                          exchange: str | None = None) -> pd.DataFrame:
        """The stream service's live indicators of the last closed ``timeframe`` candle.

        Read from the hot tier, where ``helios stream`` writes them as candles close (method:
        ``realtime.live_indicators``); they equal :meth:`indicators` over the same candles.

        Returns:
            One row (no row when the stream keeps none for this symbol and timeframe): ``close``
            and the indicator columns of :meth:`indicators`, on the candle's open time.

        Raises:
            QueryError: A bad argument.
            TierUnavailableError: No hot tier is configured, or Redis cannot be reached.
        """
        venue, unified = self._venue(exchange), symbol_arg(symbol)
        frame_of = timeframe_arg(timeframe)
        name = frame_of.value if isinstance(frame_of, Timeframe) else frame_of.name
        hot = self._hot()
        frame: pd.DataFrame = self.cache.get(
            ("latest_indicators", venue, unified, name),
            lambda: live_frame(self._redis(
                lambda: load_live_indicators(hot.client, venue, unified, name))))
        return frame.copy()

    def compare(self, symbol: str, exchanges: Sequence[str], timeframe: str = "1m",
                start: Moment | None = None, end: Moment | None = None) -> pd.DataFrame:
        """Closes of ``symbol`` on each venue, aligned by open time, and the spread between them.

        Returns:
            Columns ``close_<exchange>`` (float; NaN where a venue has no candle), ``spread``
            (highest close - lowest) and ``spread_pct`` (spread / lowest close x 100); the spread
            is NaN for a minute any venue lacks.

        Raises:
            QueryError: Fewer than two venues, or a bad argument.
        """
        venues = [self._venue(e) for e in exchanges]
        if len(set(venues)) < 2:
            raise QueryError(f"exchanges={list(exchanges)!r}: compare needs two or more venues.")
        closes = pd.concat(
            {f"close_{v}": self.ohlcv(symbol, timeframe, start, end, exchange=v,
                                      as_float=True)["close"] for v in venues}, axis=1)
        high, low = closes.max(axis=1, skipna=False), closes.min(axis=1, skipna=False)
        closes["spread"] = high - low
        closes["spread_pct"] = (high - low) / low * 100
        return closes

    # -- ticks -----------------------------------------------------------------------------------

    def trades(self, symbol: str, start: Moment | None = None, end: Moment | None = None,
               limit: int | None = None, exchange: str | None = None,
               as_float: bool = False) -> pd.DataFrame:
        """Trades the stream service wrote to the hot tier, by exchange time.

        Raises:
            QueryError: Bad arguments.
            TierUnavailableError: No hot tier, or Redis is down.
        """
        venue, unified, count = self._venue(exchange), symbol_arg(symbol), limit_arg(limit)
        start_ms, end_ms = span_args(start, end, self._now())
        since = max(start_ms or 0, self._now() - self._hot_ms)
        ticks = self._recent(unified, "trade", since - 60_000, venue)
        frame = tick_frame([ticker_table(ticks)], start_ms or since, end_ms, as_float)
        return frame if count is None else frame.tail(count)

    def tickers(self, symbol: str, start: Moment | None = None, end: Moment | None = None,
                exchange: str | None = None, as_float: bool = False) -> pd.DataFrame:
        """Ticker and book-top ticks: the hourly files for closed hours, Redis for the rest.

        Raises:
            QueryError: Bad arguments.
            TierUnavailableError: The range needs Redis and it is down.
        """
        venue, unified = self._venue(exchange), symbol_arg(symbol)
        now = self._now()
        start_ms, end_ms = span_args(start, end, now)
        lo = now - self._hot_ms if start_ms is None else start_ms
        tables = [hourly_files(self.data_dir, unified, lo, end_ms, self._qualifier(venue))]
        if self.hot is not None and end_ms > now - self._hot_ms:
            since = max(lo, now - self._hot_ms) - 60_000  # receive time trails exchange time
            tables += [ticker_table(self._recent(unified, kind, since, venue))
                       for kind in ("ticker", "book")]
        return tick_frame(tables, lo, end_ms, as_float)

    def close(self) -> None:
        """Close the Redis connections."""
        if self.hot is not None:
            self.hot.close()

    # -- internals -------------------------------------------------------------------------------

    def _candles(self, symbol: str, venue: str, timeframe: Timeframe | Bucket,
                 start_ms: int | None, end_ms: int, limit: int | None,
                 at_ms: int | None) -> pa.Table:
        if limit is None:
            return self._read(symbol, venue, timeframe, Span(start_ms or self._floor_ms, end_ms),
                              at_ms)
        floor = max(start_ms or self._floor_ms, self._floor_ms)
        window = (limit + 1) * timeframe.ms + 2 * timeframe.ms
        while True:
            lo = max(floor, end_ms - window)
            table = self._read(symbol, venue, timeframe, Span(lo, end_ms), at_ms)
            if table.num_rows >= limit or lo == floor:
                return table.slice(max(0, table.num_rows - limit))
            window *= 4

    def _read(self, symbol: str, venue: str, timeframe: Timeframe | Bucket, span: Span,
              at_ms: int | None) -> pa.Table:
        qualifier = self._qualifier(venue)
        if at_ms is None:
            return self._reader().read(symbol, timeframe, span, qualifier)
        at = ms_to_datetime(at_ms)
        stored = Timeframe.M1 if isinstance(timeframe, Bucket) else timeframe
        wide = Span(timeframe.floor(span.start_ms), span.end_ms)
        table = load_as_of(self.store, self.catalog, venue, symbol, stored, wide, at,
                           self.archive)
        return aggregate_tiered(table, timeframe) if isinstance(timeframe, Bucket) else table

    def _reader(self) -> CandleReader:
        hot = self.hot
        live = None if hot is None else (
            lambda s: self._redis(lambda: hot.live_candles(s)))
        return CandleReader(self.store, live, self._hot_ms, self._now, self.archive,
                            self.exchange)

    def _venue(self, exchange: str | None) -> str:
        if exchange is None:
            return self.exchange
        if not isinstance(exchange, str) or not exchange.isidentifier():
            raise QueryError(f"exchange={exchange!r}: give a ccxt exchange id such as 'binance'.")
        return exchange.lower()

    def _qualifier(self, venue: str) -> str | None:
        return None if venue == self.exchange else venue

    def _require_known(self, symbol: str, venue: str) -> None:
        """Refuse a symbol no tier has ever held and the venue does not list."""
        if symbol in self._known.get(venue, ()):
            return
        known = self.catalog.stored_symbols(venue)
        known |= {m.symbol for m in self.catalog.load_markets(venue)}
        self._known[venue] = known
        if symbol not in known:
            sample = ", ".join(sorted(known)[:8]) or "none yet"
            raise QueryError(f"symbol={symbol!r}: no data for it on {venue} and the venue does "
                             f"not list it (stored: {sample}). Backfill it first, or check the "
                             "symbol and the exchange.")

    def _generation(self) -> Hashable:
        """Changes whenever the catalog is written (new data landed)."""
        try:
            return self.catalog.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def _recent(self, symbol: str, kind: TickKind, since_ms: int, venue: str) -> list[Tick]:
        hot = self._hot()
        ticks: list[Tick] = self._redis(lambda: hot.recent(symbol, kind, since_ms,
                                                           exchange=venue))
        return ticks

    def _hot(self) -> HotStore:
        if self.hot is None:
            raise TierUnavailableError("No hot tier is configured (HELIOS_REDIS_URL); ticks and "
                                       "latest prices live only there.")
        return self.hot

    def _redis(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except _REDIS_DOWN as exc:
            raise TierUnavailableError(f"The hot tier (Redis) cannot be reached: {exc}. Start "
                                       "Redis or check HELIOS_REDIS_URL.") from None
