"""``StreamConfig``: what the stream service needs, its defaults, and how ``Settings`` fill it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.domain.ticks import KINDS, TickKind
from helios_pipeline.exchanges.config import ExchangeConfig
from helios_pipeline.settings import Settings
from helios_pipeline.storage.paths import wal_dir
from helios_pipeline.validation.rules import ValidationThresholds

DEFAULT_KINDS: tuple[TickKind, ...] = ("trade", "book", "ticker")
INDICATOR_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")


@dataclass(frozen=True)
class StreamConfig:
    """Configuration of one :class:`~helios_pipeline.realtime.service.StreamService`.

    Attributes:
        symbols: ccxt unified symbols to stream.
        exchange: ccxt exchange id (``ccxt.pro.<exchange>``).
        base_url: Base-URL override (the simulated exchange); REST and the spot websocket
            move there. ``None`` uses the exchange's own URLs.
        ws_url: Spot websocket URL override (``ws://host:port/ws``), applied after
            ``base_url``: a websocket proxy or recorder in front of the exchange.
        kinds: Tick kinds: ``trade`` (``watch_trades_for_symbols``), ``book``
            (``watch_bids_asks``), ``ticker`` (``watch_tickers``, full 24 h tickers).
        data_dir: Data root: the WAL (``storage.paths.wal_dir``) and the live quarantine.
        redis_url: Hot-tier Redis.
        queue_size: Ticks queued between feeds and writer before shedding (``realtime.queue``).
        trade_headroom: Extra room for trades in a full queue (default: a quarter).
        batch_max: Most ticks per durable write (one fsync).
        thresholds: Validation thresholds of the scalar tick validator.
        hot_retention_ms: How long Redis keeps ticks.
        symbols_per_connection: Most symbols one subscription (connection) carries.
        stall_timeout_s: Reconnect a feed that sent nothing for this long (``None``: never).
        backoff_base_s: First reconnect delay; doubles per failed attempt, with jitter.
        backoff_cap_s: Longest reconnect delay.
        health_interval_s: How often health is published to Redis.
        late_tolerance_ms: Late trades arriving within this of their minute's end amend the
            live candle (``realtime.candles``).
        candle_check_s: How often minutes whose end has passed are closed.
        candles: Whether live 1m candles are built and written to Redis.
        ack_log: When set, every acknowledged tick's ``symbol kind seq`` is appended to this
            file (fsynced per batch): an audit trail for durability checks.
        writer_name: Names the WAL folder and the writer's Redis marker key (default
            ``stream-{exchange}``, or ``stream-{exchange}-{i}of{n}`` for shard i of n).
        market_types: ccxt market types to load (spot only).
        shard: ``(i, n)``: this service is shard i (from 1) of n processes streaming one
            exchange (``realtime.shards``); ``(1, 1)`` when it runs alone.
        indicator_timeframes: Timeframes whose live indicators are kept in Redis
            (``realtime.live_indicators``; needs ``candles``); empty: none.
        indicator_warmup: Candles of stored history each live indicator series starts from.
        reference: The reference venue watched for cross-exchange divergence
            (``realtime.divergence_watch``); ``None``: no live divergence check.
        reference_poll_s: How often the reference venue's tickers are fetched.
        divergence_recovery_s: A divergence episode ends once the venues have agreed for this
            long (one alert when it starts, one when it ends, none in between).
        alert_webhook_url: Where divergence alerts are posted (``quality.alerts``); ``None``
            logs them only. Kept out of ``repr``: webhook URLs carry tokens.
    """

    symbols: tuple[str, ...]
    exchange: str = "binance"
    base_url: str | None = None
    ws_url: str | None = None
    kinds: tuple[TickKind, ...] = DEFAULT_KINDS
    data_dir: Path = Path("local/data")
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_size: int = 50_000
    trade_headroom: int | None = None
    batch_max: int = 5_000
    thresholds: ValidationThresholds = field(default_factory=ValidationThresholds)
    hot_retention_ms: int = Settings.hot_retention_minutes * 60_000
    symbols_per_connection: int = 200
    stall_timeout_s: float | None = 10.0
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 5.0
    health_interval_s: float = 1.0
    late_tolerance_ms: int = 2_000
    candle_check_s: float = 0.25
    candles: bool = True
    ack_log: Path | None = None
    writer_name: str = ""
    market_types: tuple[str, ...] = ("spot",)
    shard: tuple[int, int] = (1, 1)
    indicator_timeframes: tuple[str, ...] = ("1m", "5m", "1h")
    indicator_warmup: int = 250
    reference: ExchangeConfig | None = None
    reference_poll_s: float = 1.0
    divergence_recovery_s: float = 5.0
    alert_webhook_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Normalise symbols and check the numbers, naming what is wrong."""
        if not self.symbols:
            raise ValueError("StreamConfig.symbols is empty: give symbols like 'BTC/USDT'.")
        symbols = tuple(dict.fromkeys(normalize_symbol(s) for s in self.symbols))
        object.__setattr__(self, "symbols", symbols)
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"StreamConfig.kinds {self.kinds!r}: use some of {KINDS}.")
        for name in ("queue_size", "batch_max", "symbols_per_connection", "hot_retention_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"StreamConfig.{name}={getattr(self, name)}: must be >= 1.")
        if not 0 < self.backoff_base_s <= self.backoff_cap_s:
            raise ValueError(f"Backoff base {self.backoff_base_s} s must be > 0 and <= the cap "
                             f"{self.backoff_cap_s} s.")
        if self.stall_timeout_s is not None and self.stall_timeout_s <= 0:
            raise ValueError(f"stall_timeout_s={self.stall_timeout_s}: give seconds > 0 or None.")
        self._check_indicators()
        self._check_divergence()
        index, count = self.shard
        if not 1 <= index <= count:
            raise ValueError(f"StreamConfig.shard={self.shard}: give (i, n) with 1 <= i <= n.")
        if not self.writer_name:
            object.__setattr__(self, "writer_name", f"stream-{self.exchange}{self.shard_suffix}")

    def _check_indicators(self) -> None:
        for name in self.indicator_timeframes:
            if name not in INDICATOR_TIMEFRAMES:
                raise ValueError(f"StreamConfig.indicator_timeframes: {name!r} is not one of "
                                 f"{', '.join(INDICATOR_TIMEFRAMES)}.")
        if self.indicator_warmup < 0:
            raise ValueError(f"StreamConfig.indicator_warmup={self.indicator_warmup}: must be "
                             ">= 0 candles.")

    def _check_divergence(self) -> None:
        for name in ("reference_poll_s", "divergence_recovery_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"StreamConfig.{name}={getattr(self, name)}: give seconds > 0.")

    @property
    def shard_suffix(self) -> str:
        """``""`` alone, ``-2of4`` for shard 2 of 4: names its log and its health hash."""
        index, count = self.shard
        return "" if count == 1 else f"-{index}of{count}"

    @property
    def wal_folder(self) -> Path:
        """The write-ahead log of this service's writer."""
        return wal_dir(self.data_dir, self.writer_name)

    @classmethod
    def from_settings(cls, settings: Settings, symbols: tuple[str, ...] | list[str],
                      **overrides: Any) -> StreamConfig:
        """Config from the platform settings (``HELIOS_*``), for ``symbols``.

        Args:
            settings: Exchange, its URL override, Redis, data root, validation thresholds,
                the hot tier's retention, the ``stream_*`` settings, the reference venue and
                the alert webhook come from here.
            symbols: Symbols to stream.
            **overrides: Any other :class:`StreamConfig` field.
        """
        base = cls(
            symbols=tuple(symbols), exchange=settings.exchange, base_url=settings.exchange_url,
            data_dir=settings.data_dir, redis_url=settings.redis_url,
            thresholds=settings.validation,
            hot_retention_ms=settings.hot_retention_minutes * 60_000,
            kinds=settings.stream_kinds, queue_size=settings.stream_queue_size,
            stall_timeout_s=settings.stream_stall_timeout_s,
            reference=settings.reference_exchange_config(),
            alert_webhook_url=settings.alert_webhook_url,
        )
        # writer_name is derived from the exchange and the shard unless given.
        name = str(overrides.pop("writer_name", ""))
        return replace(base, writer_name=name, **overrides)
