"""The write side of the stream service: scalar validation, quarantine, durable hot-tier writes.

:class:`TickPipeline` owns the write-ahead log, the Redis hot store and a
:class:`~helios_pipeline.storage.hot.writer.DurableTickWriter`. Each batch is first validated,
one :class:`~helios_pipeline.validation.scalar.TickValidator` per (symbol, kind), then submitted:

* ticks that break no hard rule are stored; :meth:`TickPipeline.process` returns once they are
  fsynced in the log (the acknowledgement) and the writer's pusher moves them to Redis;
* the others are appended to the live quarantine (``QuarantineStore.append``, fsynced) with the
  rules they broke and the offending values, together with the malformed frames the feeds
  reported. A quarantine append that fails is retried with the next batch (and logged).

The validator was written for tickers (price, volume, bid, ask all present). Trades give
``bid = ask = price``; book tops give the mid price as ``price`` and volume 0; a ticker without
bid/ask uses its last price. Quarantine records carry the tick as received (``raw``), so these
stand-ins never hide what arrived. A kept tick that broke soft rules is stored with them as its
``flags``. With a reference venue watched (``realtime.divergence_watch``), its fresh price is
the validator's ``reference_price`` (the ``cross_exchange_divergence`` rule), and each kept
tick's price is the primary venue's latest price for the watch.

``process`` blocks (fsync): the service calls it in a worker thread, one batch at a time, which
also keeps each validator's view of its stream in arrival order. ``ack_log`` (optional) appends
``symbol kind seq`` per acknowledged tick, fsynced, before ``process`` returns.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import redis

from helios_pipeline.domain.quarantine import QuarantineRecord
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.realtime.config import StreamConfig
from helios_pipeline.realtime.divergence_watch import DivergenceWatch
from helios_pipeline.storage.hot.store import HotStore, StreamKey
from helios_pipeline.storage.hot.wal import WriteAheadLog
from helios_pipeline.storage.hot.writer import Ack, DurableTickWriter
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.rules import Verdict
from helios_pipeline.validation.scalar import TickValidator

log = logging.getLogger(__name__)

MAX_PENDING_QUARANTINE = 100_000
_ZERO = Decimal(0)
_TWO = Decimal(2)


class TickPipeline:
    """Validate, quarantine and durably write batches of ticks (see the module docstring).

    Args:
        config: The service's configuration.
        source: Where the ticks come from, for quarantine records (``binance@ws://...``).
    """

    def __init__(self, config: StreamConfig, source: str) -> None:
        self.config = config
        self.source = source
        self.quarantine = QuarantineStore(config.data_dir)
        self._validators: dict[tuple[str, str], TickValidator] = {}
        self._rejected: list[QuarantineRecord] = []
        self._lock = threading.Lock()
        self.wal: WriteAheadLog | None = None
        self.hot: HotStore | None = None
        self.writer: DurableTickWriter | None = None
        self._ack_fd: int | None = None
        self._closed_health: dict[str, object] = {}
        self.valid = 0
        self.rejected = 0
        self.quarantined = 0
        self.soft_flagged = 0
        self.quarantine_errors = 0
        self.quarantine_dropped = 0
        self.quarantined_by_symbol: Counter[str] = Counter()
        self.divergence: DivergenceWatch | None = None  # set when a reference venue is watched

    def open(self) -> int:
        """Open the log and Redis, start the writer (replaying what Redis lacks).

        Returns:
            Logged ticks after the last checkpoint (Redis may lack them; they are replayed).

        Raises:
            WalLockedError: Another process writes this log (one service per exchange).
            WalCorruptionError: The log is damaged beyond a torn tail.
        """
        cfg = self.config
        self.wal = WriteAheadLog(cfg.wal_folder)
        self.hot = HotStore(cfg.redis_url, cfg.hot_retention_ms, exchange=cfg.exchange,
                            socket_timeout_s=2.0)
        self.writer = DurableTickWriter(self.wal, self.hot, name=cfg.writer_name)
        if cfg.ack_log is not None:
            cfg.ack_log.parent.mkdir(parents=True, exist_ok=True)
            self._ack_fd = os.open(cfg.ack_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self.writer.recover(self._stream_floors(self.hot))

    def _stream_floors(self, hot: HotStore) -> dict[StreamKey, int]:
        """The last ids Redis holds for this service's streams (new seqs must go above them)."""
        cfg = self.config
        streams = [(cfg.exchange, symbol, kind) for symbol in cfg.symbols for kind in cfg.kinds]
        try:
            return hot.last_seqs(streams)
        except redis.RedisError as exc:
            log.warning("Could not read the last stream ids from Redis (%s); seqs start at the "
                        "ticks' receive times, and a tick whose seq is not above its stream's "
                        "last id (written by another shard) would be skipped as already present.",
                        exc)
            return {}

    def process(self, ticks: Sequence[Tick], malformed: Sequence[QuarantineRecord] = ()) -> Ack:
        """Validate ``ticks``, store the valid ones durably, quarantine the rest and ``malformed``.

        Returns:
            The acknowledgement: the stored ticks and their seqs, durable in the log.

        Raises:
            WriterError: The writer is closed or its log failed (nothing was acknowledged).
            WalError: The log write failed (nothing was acknowledged).
        """
        writer = self.writer
        if writer is None:
            raise RuntimeError("TickPipeline.open() was not called.")
        # One batch at a time, validated before it is submitted: each validator sees its
        # stream in the order the writer assigns seqs, and a rejected tick never reaches the log.
        with self._lock:
            self._rejected.extend(malformed)
            self.quarantined += len(malformed)
            try:
                ack = writer.submit(self._validate(ticks))
            finally:
                self._flush_quarantine()
            self.valid += len(ack)
            if self._ack_fd is not None and len(ack):
                self._log_acks(ack)
        return ack

    def _validate(self, ticks: Sequence[Tick]) -> list[Tick]:
        """Keep the ticks without hard failures; queue quarantine records for the others."""
        kept: list[Tick] = []
        for tick in ticks:
            verdict = self._verdict(tick)
            if verdict.passed:
                if verdict.soft:
                    self.soft_flagged += 1
                    tick = tick.with_flags(verdict.soft)
                kept.append(tick)
                continue
            self.rejected += 1
            self.quarantined += 1
            self.quarantined_by_symbol[tick.symbol] += 1
            self._rejected.append(QuarantineRecord.create(
                tick.symbol, tick.kind, tick.exchange_ts_ms, verdict.rules,
                dict(verdict.details), tick.to_dict(), self.source))
        return kept

    def _verdict(self, tick: Tick) -> Verdict:
        key = (tick.symbol, tick.kind)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = TickValidator(tick.symbol, self.config.thresholds)
        price, qty, bid, ask = tick.price, tick.qty, tick.bid, tick.ask
        if tick.kind == "trade":
            bid = ask = price
        elif tick.kind == "book":
            price, qty = None, _ZERO
            if bid is not None and ask is not None and bid.is_finite() and ask.is_finite():
                price = (bid + ask) / _TWO
        else:
            bid, ask = (price if bid is None else bid), (price if ask is None else ask)
        watch, ts_ms = self.divergence, tick.exchange_ts_ms
        reference = None if watch is None else watch.reference_price(tick.symbol, ts_ms)
        verdict = validator.check(ts_ms, tick.received_ts_us // 1000, price, qty, bid, ask,
                                  reference)
        if watch is not None and verdict.passed and price is not None:
            watch.observe(tick.symbol, ts_ms, price)
        return verdict

    def _flush_quarantine(self) -> None:
        if not self._rejected:
            return
        try:
            self.quarantine.append(self._rejected)
        except OSError:
            self.quarantine_errors += 1
            log.exception("Appending %d quarantine records failed; retrying with the next batch.",
                          len(self._rejected))
            excess = len(self._rejected) - MAX_PENDING_QUARANTINE
            if excess > 0:
                self.quarantine_dropped += excess
                log.error("Dropping the %d oldest quarantine records kept for retry.", excess)
                del self._rejected[:excess]
            return
        self._rejected = []

    def _log_acks(self, ack: Ack) -> None:
        lines = "".join(f"{t.symbol} {t.kind} {s}\n" for t, s in zip(ack.submitted, ack.seqs,
                                                                      strict=True))
        fd = self._ack_fd
        if fd is not None:
            os.write(fd, lines.encode())
            os.fsync(fd)

    def health(self) -> dict[str, object]:
        """Validation and quarantine counters, and the writer's health."""
        writer = self.writer.health() if self.writer is not None else self._closed_health
        return {"valid": self.valid, "rejected": self.rejected, "quarantined": self.quarantined,
                "soft_flagged": self.soft_flagged, "quarantine_errors": self.quarantine_errors,
                "quarantine_pending": len(self._rejected),
                "quarantine_dropped": self.quarantine_dropped, "writer": writer}

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop the writer (giving Redis ``timeout_s`` to catch up) and close the log.

        Returns:
            Whether Redis held everything acknowledged when the writer stopped (the rest stays
            in the log and is replayed by the next ``open``).
        """
        caught_up = True
        with self._lock:
            if self.writer is not None:
                caught_up = self.writer.close(timeout_s)
                self._closed_health = self.writer.health()  # what health() reports from now on
            self._flush_quarantine()
            if self.wal is not None:
                self.wal.close()
            if self.hot is not None:
                self.hot.close()
            if self._ack_fd is not None:
                os.close(self._ack_fd)
                self._ack_fd = None
            self.writer = self.wal = self.hot = None
        return caught_up
