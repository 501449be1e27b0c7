"""HOT tier: the last hour of ticks in Redis, in plain streams and hashes (no modules).

Keys (``keys``): a stream per exchange, symbol and kind whose entries hold the tick's
``codec`` encoding in field ``t`` (exact decimals), and a hash of each exchange's newest tickers.

Stream ids are derived from the tick's writer-assigned ``seq`` (``domain.ticks``): ``seq`` is a
hybrid clock, ``max(previous seq + 1, received_ts_us)``, strictly increasing per stream, so the
id ``{seq // 1000}-{seq % 1000}`` is strictly increasing too, and its millisecond part is the
receive time (or a hair later under a burst). That gives three properties at once:

* **Idempotent replays.** The same tick always gets the same id, and Redis refuses an ``XADD``
  whose id is not above the stream's last id (even after the entry was trimmed). The write script
  counts such refusals as "already present" and skips them, so replaying a log is exactly-once.
* **Time-based trimming.** ``XTRIM MINID ~ {now_ms - retention_ms}`` after every batch keeps the
  last hour (approximately: Redis drops whole internal nodes, up to 100 entries, at a time).
* **Time-based reads.** ``recent(symbol, kind, since_ms)`` is ``XRANGE key {since_ms} +``.

Writes go through one Lua script per batch (sent as one pre-packed ``EVALSHA``; Redis runs it
atomically): ``XADD`` each tick, ``XTRIM`` each stream, ``HSET`` the newest ticker of each symbol.
An optional :class:`Guard` makes the batch conditional on a marker key holding an expected value
and moves the marker on, in the same atomic step; ``writer`` stores its log position
there, so it can tell after a Redis restart or flush exactly what Redis lost.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.symbols import to_storage_id
from helios_pipeline.domain.ticks import Tick, TickKind
from helios_pipeline.storage.hot.client import async_client, sync_client
from helios_pipeline.storage.hot.codec import decimal_field, decode_tick, encode_tick
from helios_pipeline.storage.hot.health import read_health
from helios_pipeline.storage.hot.keys import latest_key, stream_key
from helios_pipeline.storage.hot.live_candles import load_live_candles

DEFAULT_RETENTION_MS = 3_600_000
PAYLOAD_FIELD = "t"

# A tick ready for Redis: (exchange, symbol, kind, seq, encoded tick).
HotEntry = tuple[str, str, str, int, bytes]
# One stream: (exchange, symbol, kind).
StreamKey = tuple[str, str, str]

PUSH_SCRIPT = """
local guarded = ARGV[1] == '1'
if guarded then
  local current = redis.call('GET', KEYS[1]) or ''
  if current ~= ARGV[2] then return {-1, current} end
end
local added, skipped, i = 0, 0, 6
for _ = 1, tonumber(ARGV[5]) do
  local stream, latest = KEYS[tonumber(ARGV[i])], tonumber(ARGV[i + 1])
  local field, n, newest = ARGV[i + 2], tonumber(ARGV[i + 3]), nil
  i = i + 4
  for _ = 1, n do
    local reply = redis.pcall('XADD', stream, ARGV[i], 't', ARGV[i + 1])
    if type(reply) == 'table' and reply.err then
      if not string.find(reply.err, 'equal or smaller', 1, true) then
        return redis.error_reply(reply.err)
      end
      skipped = skipped + 1
    else
      added, newest = added + 1, ARGV[i + 1]
    end
    i = i + 2
  end
  redis.call('XTRIM', stream, 'MINID', '~', ARGV[4])
  if latest > 0 and newest then redis.call('HSET', KEYS[latest], field, newest) end
end
if guarded then redis.call('SET', KEYS[1], ARGV[3]) end
return {added, skipped}
"""


class HotStoreError(RuntimeError):
    """Redis answered something the hot tier did not expect; the message says what."""


@dataclass(frozen=True, slots=True)
class Guard:
    """Makes a push conditional: apply only if ``key`` holds ``expected``, then set it to ``new``.

    A missing key counts as holding ``""``.
    """

    key: str
    expected: str
    new: str


@dataclass(frozen=True, slots=True)
class PushResult:
    """What one push did.

    Attributes:
        added: Ticks written.
        skipped: Ticks already present (an earlier write or replay); not written again.
        expired: Ticks older than the retention; not written.
        guard_value: ``None`` if the push was applied; otherwise the guard key's actual value
            (``""`` if missing) and nothing was written.
    """

    added: int
    skipped: int
    expired: int
    guard_value: str | None = None


def stream_id(seq: int) -> str:
    """Stream entry id of a tick's ``seq``: ``{seq // 1000}-{seq % 1000}``."""
    return f"{seq // 1000}-{seq % 1000}"


def seq_from_stream_id(entry_id: str | bytes) -> int:
    """Inverse of :func:`stream_id`.

    Raises:
        ValueError: ``entry_id`` was not made by :func:`stream_id`.
    """
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, low = text.partition("-")
    if not (ms.isdigit() and low.isdigit() and int(low) < 1000):
        raise ValueError(f"Stream id {text!r} is not '<ms>-<0..999>' as stream_id() makes them.")
    return int(ms) * 1000 + int(low)


@functools.lru_cache(maxsize=65536)
def _storage_id(symbol: str) -> str:
    return to_storage_id(symbol)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class HotStore:
    """The Redis hot tier (see the module docstring for the key and id design).

    Thread-safe for the synchronous methods; the async ones (``wait_for``) use a client bound
    to the event loop that first calls them.
    """

    def __init__(
        self,
        redis_url: str,
        retention_ms: int = DEFAULT_RETENTION_MS,
        *,
        exchange: str = "binance",
        clock_ms: Callable[[], int] | None = None,
        socket_timeout_s: float = 5.0,
    ) -> None:
        """Connect lazily to ``redis_url``.

        Args:
            redis_url: ``redis://host:port/db``.
            retention_ms: How much history streams keep (by receive time).
            exchange: Exchange used by the read methods when none is given.
            clock_ms: Millisecond wall clock deciding what is older than the retention
                (default: the system clock).
            socket_timeout_s: Socket timeout for every Redis call.
        """
        if retention_ms <= 0:
            raise ValueError(f"retention_ms={retention_ms}: must be a positive number of ms.")
        self.redis_url = redis_url
        self.retention_ms = retention_ms
        self.exchange = exchange
        self._clock_ms = clock_ms or _wall_clock_ms
        self._timeout = socket_timeout_s
        self.client = sync_client(redis_url, socket_timeout_s)
        self._sha = hashlib.sha1(PUSH_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self._aclient: redis.asyncio.Redis | None = None

    def append(self, ticks: Sequence[Tick]) -> PushResult:
        """Store ticks that already carry their ``seq``; ones already present are skipped.

        Raises:
            ValueError: A tick has no ``seq`` yet.
            SymbolError: A tick's symbol is not a unified symbol.
            redis.RedisError: Redis is unreachable or refused the batch.
        """
        entries: list[HotEntry] = []
        for tick in sorted(ticks, key=lambda t: t.seq):  # a stream only takes increasing ids
            if tick.seq <= 0:
                raise ValueError(f"Tick {tick!r} has no seq; DurableTickWriter assigns them.")
            entries.append((tick.exchange, tick.symbol, tick.kind, tick.seq, encode_tick(tick)))
        return self.push(entries)

    def push(self, entries: Sequence[HotEntry], guard: Guard | None = None) -> PushResult:
        """Store encoded ticks in one atomic script call (the hot path).

        Entries of one stream must come in ``seq`` order. Entries older than the retention are
        not written; the rest are written unless already present.

        Args:
            entries: ``(exchange, symbol, kind, seq, encoded tick)``.
            guard: Apply only if the guard key holds ``guard.expected`` (see :class:`Guard`).

        Raises:
            redis.RedisError: Redis is unreachable or refused the batch (nothing or a prefix of
                each stream's entries was written; pushing again is safe).
        """
        min_ms = self._clock_ms() - self.retention_ms
        groups: dict[tuple[str, str, str], list[bytes]] = {}
        expired = 0
        for exchange, symbol, kind, seq, payload in entries:
            if seq // 1000 < min_ms:
                expired += 1
                continue
            parts = groups.get((exchange, symbol, kind))
            if parts is None:
                parts = groups[(exchange, symbol, kind)] = []
            ident = b"%d-%d" % divmod(seq, 1000)
            parts.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(ident), ident, len(payload), payload))
        if not groups and guard is None:
            return PushResult(0, 0, expired)
        reply = self._run(self._pack(groups, guard, min_ms))
        if not isinstance(reply, list) or len(reply) != 2:
            raise HotStoreError(f"Unexpected reply {reply!r} from the hot-tier write script.")
        if reply[0] == -1:
            return PushResult(0, 0, expired, guard_value=bytes(reply[1]).decode())
        return PushResult(int(reply[0]), int(reply[1]), expired)

    def _pack(
        self, groups: dict[tuple[str, str, str], list[bytes]], guard: Guard | None, min_ms: int
    ) -> bytes:
        """The whole ``EVALSHA`` command as RESP bytes (redis-py's packer is 3x slower here)."""
        keys: list[str] = [guard.key] if guard else []
        key_index: dict[str, int] = {}
        body: list[bytes] = []
        for (exchange, symbol, kind), parts in groups.items():
            keys.append(stream_key(exchange, symbol, kind))
            stream_index, latest = len(keys), 0
            if kind == "ticker":
                hash_key = latest_key(exchange)
                if hash_key not in key_index:
                    keys.append(hash_key)
                    key_index[hash_key] = len(keys)
                latest = key_index[hash_key]
            head = (str(stream_index), str(latest), _storage_id(symbol))
            body += [_bulk(x.encode()) for x in (*head, str(len(parts)))]
            body += parts
        argv = ("1" if guard else "0", guard.expected if guard else "",
                guard.new if guard else "", f"{min_ms}-0", str(len(groups)))
        count = 3 + len(keys) + len(argv) + 4 * len(groups) + 2 * sum(map(len, groups.values()))
        head_parts = [b"*%d\r\n" % count, _bulk(b"EVALSHA"), _bulk(self._sha.encode()),
                      _bulk(str(len(keys)).encode())]
        head_parts += [_bulk(k.encode()) for k in keys]
        head_parts += [_bulk(a.encode()) for a in argv]
        return b"".join(head_parts + body)

    def _run(self, command: bytes) -> Any:
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            try:
                conn.send_packed_command([command])  # type: ignore[no-untyped-call]
                return conn.read_response()
            except NoScriptError:
                # Redis restarted or its script cache was flushed: load and send again.
                conn.send_command("SCRIPT", "LOAD", PUSH_SCRIPT)  # type: ignore[no-untyped-call]
                conn.read_response()
                conn.send_packed_command([command])  # type: ignore[no-untyped-call]
                return conn.read_response()
        finally:
            pool.release(conn)

    def latest(self, symbol: str, *, exchange: str | None = None) -> Tick | None:
        """Newest ticker of ``symbol`` (one ``HGET``), or ``None`` if there is none."""
        raw = self.client.hget(latest_key(exchange or self.exchange), _storage_id(symbol))
        return None if raw is None else decode_tick(cast(bytes, raw))

    def latest_price(self, symbol: str, *, exchange: str | None = None) -> Decimal | None:
        """Last price of the newest ticker of ``symbol`` (one ``HGET``), or ``None``."""
        raw = self.client.hget(latest_key(exchange or self.exchange), _storage_id(symbol))
        return None if raw is None else decimal_field(cast(bytes, raw), "price")

    def latest_many(
        self, symbols: Sequence[str], *, exchange: str | None = None
    ) -> dict[str, Tick | None]:
        """Newest ticker of each symbol (one ``HMGET``); ``None`` where there is none."""
        if not symbols:
            return {}
        fields = [_storage_id(s) for s in symbols]
        key = latest_key(exchange or self.exchange)
        raws = cast(list[bytes | None], self.client.hmget(key, fields))
        pairs = zip(symbols, raws, strict=True)
        return {symbol: None if raw is None else decode_tick(raw) for symbol, raw in pairs}

    def recent(
        self, symbol: str, kind: TickKind, since_ms: int, *, exchange: str | None = None,
        count: int | None = None,
    ) -> list[Tick]:
        """Ticks of one stream received at or after ``since_ms`` (``XRANGE``), oldest first.

        Args:
            symbol: ccxt unified symbol.
            kind: ``trade``, ``ticker`` or ``book``.
            since_ms: Millisecond epoch (receive time, as the stream ids carry it).
            exchange: Defaults to the store's exchange.
            count: At most this many ticks (the oldest ones).
        """
        key = stream_key(exchange or self.exchange, symbol, kind)
        entries = self.client.xrange(key, min=f"{since_ms}-0", max="+", count=count)
        return [_entry_tick(fields) for _, fields in cast(list[Any], entries)]

    def live_candles(self, symbol: str, *, exchange: str | None = None) -> list[LiveCandle]:
        """Live 1m candles of ``symbol`` the stream service wrote, oldest first."""
        return load_live_candles(self.client, exchange or self.exchange, symbol)

    def stream_health(self, *, exchange: str | None = None) -> dict[str, str]:
        """The stream service's published health, shards combined (``health.read_health``)."""
        return read_health(self.client, exchange or self.exchange)

    def last_id(self, symbol: str, kind: TickKind, *, exchange: str | None = None) -> str | None:
        """Id of the newest entry of one stream, or ``None`` if it has none."""
        key = stream_key(exchange or self.exchange, symbol, kind)
        entries = cast(list[Any], self.client.xrevrange(key, max="+", min="-", count=1))
        return bytes(entries[0][0]).decode() if entries else None

    def last_seqs(self, streams: Sequence[StreamKey]) -> dict[StreamKey, int]:
        """The seq of the last id each ``(exchange, symbol, kind)`` stream took, trimmed or not.

        Redis refuses an ``XADD`` at or below a stream's last id, and the write script counts
        that as "already present": a writer that has no log for a stream (a symbol moved from
        another shard, a new data folder) starts its seqs above these. Missing streams are left
        out.
        """
        pipe = self.client.pipeline(transaction=False)
        for exchange, symbol, kind in streams:
            pipe.xinfo_stream(stream_key(exchange, symbol, kind))
        replies = pipe.execute(raise_on_error=False)  # a missing stream answers with an error
        return {stream: seq_from_stream_id(info["last-generated-id"])
                for stream, info in zip(streams, replies, strict=True) if isinstance(info, dict)}

    async def wait_for(
        self, symbol: str, kind: TickKind, after_id: str | None = None, timeout_ms: int = 1000,
        *, exchange: str | None = None, count: int = 1000,
    ) -> list[tuple[str, Tick]]:
        """Wait until one stream has entries after ``after_id`` (``XREAD BLOCK``).

        Args:
            symbol: ccxt unified symbol.
            kind: ``trade``, ``ticker`` or ``book``.
            after_id: Stream id to read after (from :meth:`last_id` or a previous call);
                ``None`` waits for entries added after the call.
            timeout_ms: Give up after this long (must be positive).
            exchange: Defaults to the store's exchange.
            count: At most this many entries.

        Returns:
            ``(stream id, tick)`` pairs, oldest first; empty if the timeout passed.
        """
        if timeout_ms <= 0:
            raise ValueError(f"timeout_ms={timeout_ms}: give a positive timeout in ms.")
        key = stream_key(exchange or self.exchange, symbol, kind)
        if self._aclient is None:
            self._aclient = async_client(self.redis_url, self._timeout, blocking_reads=True)
        reply = await asyncio.wait_for(
            self._aclient.xread({key: after_id or "$"}, count=count, block=timeout_ms),
            timeout=timeout_ms / 1000 + self._timeout,
        )
        if not reply:
            return []
        entries = cast(list[Any], reply)[0][1]
        return [(bytes(i).decode(), _entry_tick(fields)) for i, fields in entries]

    def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the synchronous connections."""
        self.client.close()

    async def aclose(self) -> None:
        """Close the asynchronous connections (and the synchronous ones)."""
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        self.close()


def _entry_tick(fields: Any) -> Tick:
    payload = fields.get(PAYLOAD_FIELD.encode())
    if payload is None:
        raise HotStoreError(
            f"Stream entry {fields!r} has no {PAYLOAD_FIELD!r} field: the key holds data this "
            f"store did not write. Use another key prefix for other data."
        )
    return decode_tick(bytes(payload))
