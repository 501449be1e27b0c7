"""Live cross-exchange divergence: the streamed symbols against a reference venue.

When a reference venue is configured (``HELIOS_REFERENCE_EXCHANGE``, ``StreamConfig.reference``)
the stream service starts a :class:`LiveDivergence` beside its feeds. The rule and its threshold
are the validation ones (``validation.rules.is_divergent``: ``|a - b| / min(a, b)`` above
``max_divergence``, 5 % by default, ``HELIOS_VALIDATION``); nothing here defines another.

* **Prices.** :class:`DivergenceWatch` keeps the latest price per venue per symbol: the primary's
  from every tick the validator keeps (trade price, ticker last, book mid), the reference's from
  its tickers, fetched every ``reference_poll_s`` over REST (``ExchangeClient.fetch_tickers``:
  retries, rate limits, circuit breaker; any venue ccxt knows, the OKX simulator included).
  A price is *fresh* against another when their exchange times are at most ``stale_after_ms``
  apart (5 s, the validator's staleness bound); stale pairs are never compared.
* **Ticks.** Each tick is validated with the reference's fresh price as ``reference_price``, so
  the scalar validator's ``cross_exchange_divergence`` soft rule flags a tick priced more than
  the threshold away from the other venue; the flag is stored on the tick (``Tick.flags``).
* **Episodes.** After every poll, each symbol with a fresh pair is compared by the same rule. A
  symbol that diverges opens an episode: one ``warning`` alert (rule
  ``cross_exchange_divergence``). It ends once the venues have agreed for
  ``divergence_recovery_s``: one ``info`` alert (``cross_exchange_divergence.recovered``).
  Nothing is sent while it lasts, however many ticks it spans, and a shorter agreement does not
  end it, so prices hovering at the threshold do not flap.
* **State.** Each comparison is written to ``helios:{exchange}:{SYMBOL}:divergence``
  (``storage.hot.divergence``), read by ``MarketDataQuery.divergence`` and the Dagster realtime
  resource; it expires when comparisons stop.

Alerts go through ``quality.alerts.AlertManager`` (log and ``HELIOS_ALERT_WEBHOOK_URL``), in
order, from a task of their own: a slow webhook never delays a poll. A reference venue that
cannot be reached is logged and asked again at the next poll; the stream goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from helios_pipeline.domain.models import MarketDataPoint
from helios_pipeline.domain.timeframe import datetime_to_ms, ms_to_datetime
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.exchanges.errors import ExchangeError
from helios_pipeline.quality.alerts import Alert, AlertManager, Severity
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.storage.hot.divergence import DivergenceState, HotDivergenceWriter
from helios_pipeline.validation.rules import ValidationThresholds, divergence, is_divergent

log = logging.getLogger(__name__)
ALERTS_LOG = logging.getLogger("helios.quality")
RULE = "cross_exchange_divergence"

Quote = tuple[Decimal, int]
"""A venue's latest price of a symbol and its exchange time (ms); replaced whole, never edited."""


@dataclass
class Episode:
    """One symbol's divergence state between comparisons.

    Attributes:
        diverging: Whether an episode is open.
        since_ms: When the current state began (``None`` before the first comparison).
        agreeing_since_ms: In an episode, the start of the current run of agreeing comparisons.
        worst: Largest divergence of the open episode.
    """

    diverging: bool = False
    since_ms: int | None = None
    agreeing_since_ms: int | None = None
    worst: float = 0.0


class DivergenceWatch:
    """Latest prices of two venues, per-tick reference prices, per-symbol episodes.

    :meth:`reference_price` and :meth:`observe` run in the stream's writer thread, the rest on
    its event loop; each quote is one tuple stored under one key, so neither sees half an update.

    Args:
        exchange: The primary venue (ccxt id).
        reference: The reference venue's name (its qualifier or ccxt id).
        symbols: The streamed symbols (ccxt unified).
        thresholds: ``max_divergence`` (the rule) and ``stale_after_ms`` (freshness).
        recovery_ms: Agreement this long ends an episode.
    """

    def __init__(self, exchange: str, reference: str, symbols: Iterable[str],
                 thresholds: ValidationThresholds, recovery_ms: int) -> None:
        self.exchange, self.reference = exchange, reference
        self.thresholds = thresholds
        self.recovery_ms = recovery_ms
        self.episodes = {symbol: Episode() for symbol in symbols}
        self.opened = 0
        self.closed = 0
        self._primary: dict[str, Quote] = {}
        self._reference: dict[str, Quote] = {}

    @property
    def symbols(self) -> tuple[str, ...]:
        """The watched symbols."""
        return tuple(self.episodes)

    def _fresh(self, a_ms: int, b_ms: int) -> bool:
        return abs(a_ms - b_ms) <= self.thresholds.stale_after_ms

    def reference_price(self, symbol: str, ts_ms: int) -> Decimal | None:
        """The reference venue's latest price of ``symbol`` if fresh at exchange time ``ts_ms``."""
        quote = self._reference.get(symbol)
        return quote[0] if quote is not None and self._fresh(quote[1], ts_ms) else None

    def observe(self, symbol: str, ts_ms: int, price: Decimal) -> None:
        """A price of the primary venue (a tick the validator kept)."""
        self._primary[symbol] = (price, ts_ms)

    def on_reference(self, symbol: str, ts_ms: int, price: Decimal) -> None:
        """A price of the reference venue (its ticker)."""
        self._reference[symbol] = (price, ts_ms)

    def evaluate(self, now_ms: int) -> tuple[list[Alert], list[DivergenceState]]:
        """Compare every symbol with a fresh pair of prices; alerts for episodes that changed.

        Returns:
            The alerts (an episode started or ended) and the state of each compared symbol.
        """
        alerts: list[Alert] = []
        states: list[DivergenceState] = []
        for symbol, episode in self.episodes.items():
            ours, theirs = self._primary.get(symbol), self._reference.get(symbol)
            if ours is None or theirs is None or not self._fresh(ours[1], theirs[1]):
                continue
            ratio = divergence(ours[0], theirs[0])
            alert = self._step(symbol, episode, is_divergent(ours[0], theirs[0], self.thresholds),
                               ratio, ours, theirs, now_ms)
            if alert is not None:
                alerts.append(alert)
            states.append(DivergenceState(
                symbol, "diverging" if episode.diverging else "agreeing", self.reference,
                ours[0], theirs[0], ratio, self.thresholds.max_divergence, ours[1], theirs[1],
                episode.since_ms or now_ms, now_ms))
        return alerts, states

    def _step(self, symbol: str, episode: Episode, diverging: bool, ratio: float, ours: Quote,
              theirs: Quote, now_ms: int) -> Alert | None:
        """Move one symbol's episode on by one comparison; the alert if it started or ended."""
        if diverging:
            episode.agreeing_since_ms = None
            if episode.diverging:
                episode.worst = max(episode.worst, ratio)
                return None
            episode.diverging, episode.since_ms, episode.worst = True, now_ms, ratio
            self.opened += 1
            return self._alert("warning", f"diverges from {self.reference}",
                               f"{self._prices(ours, theirs, ratio)}, above the "
                               f"{self.thresholds.max_divergence:.2%} threshold",
                               RULE, symbol, ratio, now_ms)
        if not episode.diverging:
            episode.since_ms = episode.since_ms or now_ms
            return None
        agreeing = episode.agreeing_since_ms = episode.agreeing_since_ms or now_ms
        if now_ms - agreeing < self.recovery_ms:
            return None
        started = ms_to_datetime(episode.since_ms or now_ms).isoformat()
        message = (f"the divergence since {started} is over (worst {episode.worst:.2%}); "
                   f"{self._prices(ours, theirs, ratio)}")
        episode.diverging, episode.since_ms, episode.agreeing_since_ms = False, agreeing, None
        self.closed += 1
        return self._alert("info", f"agrees with {self.reference} again", message,
                           f"{RULE}.recovered", symbol, ratio, now_ms)

    def _prices(self, ours: Quote, theirs: Quote, ratio: float) -> str:
        return (f"{self.exchange} {ours[0]} vs {self.reference} {theirs[0]}: "
                f"{ratio:.2%} apart")

    def _alert(self, severity: Severity, what: str, message: str, rule: str, symbol: str,
               ratio: float, now_ms: int) -> Alert:
        key = f"{self.exchange}:{symbol}"
        return Alert(severity, f"{key} {what}", message, key, rule, ratio, ms_to_datetime(now_ms))


class LiveDivergence:
    """The stream service's divergence companion: polls, compares, writes, alerts.

    Args:
        watch: Prices and episodes (shared with the tick pipeline).
        client: The reference venue.
        writer: Where each comparison goes (Redis).
        alerts: Where episode alerts go.
        poll_s: Seconds between the starts of two polls.
        clock_ns: The service's wall clock.
    """

    def __init__(self, watch: DivergenceWatch, client: ExchangeClient, writer: HotDivergenceWriter,
                 alerts: AlertManager, poll_s: float,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.watch, self.client, self.writer, self.alerts = watch, client, writer, alerts
        self.poll_s = poll_s
        self._clock_ns = clock_ns
        self.polls = 0
        self.poll_failures = 0
        self.last_error: str | None = None
        self.alerts_sent = 0
        self.unlisted: tuple[str, ...] = ()
        self._listed: list[str] | None = None
        self._outbox: asyncio.Queue[list[Alert]] = asyncio.Queue()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_s`` until ``stop`` is set (or the task is cancelled)."""
        sender = asyncio.create_task(self._send_loop(), name="stream-divergence-alerts")
        try:
            while not stop.is_set():
                started = time.monotonic()
                await self.poll()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(),
                                           max(0.0, self.poll_s - (time.monotonic() - started)))
        finally:
            sender.cancel()

    async def poll(self) -> int:
        """One poll: fetch the reference tickers, compare, write, queue alerts.

        Returns:
            How many symbols were compared (0 when the venue could not be asked).
        """
        try:
            points = await self._fetch()
        except Exception as exc:  # the stream goes on: logged and counted, asked again next poll
            self._failed(exc)
            return 0
        self.polls += 1
        for symbol, point in points.items():
            self.watch.on_reference(symbol, datetime_to_ms(point.timestamp), point.price)
        alerts, states = self.watch.evaluate(self._clock_ns() // 1_000_000)
        if alerts:
            self._outbox.put_nowait(alerts)
        await self.writer.write(states)
        return len(states)

    async def _fetch(self) -> dict[str, MarketDataPoint]:
        if self._listed is None:
            listed = {m.symbol for m in await self.client.load_markets()}
            self._listed = [s for s in self.watch.symbols if s in listed]
            self.unlisted = tuple(s for s in self.watch.symbols if s not in listed)
            if self.unlisted:
                log.warning("The reference venue %s lists no %s: those symbols are not checked "
                            "for divergence.", self.watch.reference, ", ".join(self.unlisted))
        return await self.client.fetch_tickers(self._listed) if self._listed else {}

    def _failed(self, exc: Exception) -> None:
        self.poll_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        expected = isinstance(exc, ExchangeError | OSError)
        if self.poll_failures <= 3 or self.poll_failures % 100 == 0:
            log.log(logging.WARNING if expected else logging.ERROR,
                    "Polling the reference venue %s failed (%d so far): %s; asking again in "
                    "%.1f s.", self.watch.reference, self.poll_failures, self.last_error,
                    self.poll_s, exc_info=not expected)

    async def _send_loop(self) -> None:
        while True:
            batch = await self._outbox.get()
            try:
                self.alerts_sent += await self.alerts.send_all(batch)
            except Exception:  # AlertManager logs delivery problems; anything else is a bug
                log.exception("Sending %d divergence alert(s) failed.", len(batch))

    def health(self) -> dict[str, object]:
        """What the service's health reports about the divergence check."""
        watch = self.watch
        return {"reference": watch.reference, "polls": self.polls,
                "poll_failures": self.poll_failures, "last_error": self.last_error,
                "unlisted": list(self.unlisted), "episodes": watch.opened,
                "diverging": sorted(s for s, e in watch.episodes.items() if e.diverging),
                "alerts_sent": self.alerts_sent, "alerts_pending": self._outbox.qsize(),
                "state_writes": self.writer.written, "state_write_failures": self.writer.failures}

    async def aclose(self) -> None:
        """Close the reference venue's session and the Redis connections."""
        await self.client.close()
        await self.writer.aclose()


def start_divergence_watch(config: StreamConfig,
                           clock_ns: Callable[[], int] = time.time_ns) -> LiveDivergence | None:
    """The divergence companion of a stream service, or ``None`` without a reference venue."""
    reference = config.reference
    if reference is None:
        return None
    watch = DivergenceWatch(config.exchange, reference.qualifier or reference.exchange_id,
                            config.symbols, config.thresholds,
                            round(config.divergence_recovery_s * 1000))
    ttl_ms = round(max(30.0, 10 * config.reference_poll_s) * 1000)
    return LiveDivergence(watch, ExchangeClient.from_config(reference),
                          HotDivergenceWriter(config.redis_url, config.exchange, ttl_ms),
                          AlertManager(config.alert_webhook_url, ALERTS_LOG, min_interval_s=0.0),
                          config.reference_poll_s, clock_ns)
