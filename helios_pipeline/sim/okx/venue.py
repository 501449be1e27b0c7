"""OKX as a second venue over the simulated market: instruments, venue basis and candles.

The OKX simulator invents no second market. Its 1m candles are the Binance simulator's 1m klines
(seeded or replayed, through :class:`~helios_pipeline.sim.market.feed.MarketFeed`) seen
through a venue transform: prices times a small basis that is stable per symbol and UTC day
(within +-0.04 %), rounded to OKX's own tick size; volumes times a venue share (OKX trades 30 to
60 % of the simulated Binance volume), rounded to OKX's lot size. Normal divergence between the
venues is therefore tiny, and a ``divergence`` data fault is what makes it large.

Longer bars are built from the 1m candles of the venue. OKX aligns 6H, 12H and 1D bars to Hong
Kong time (UTC+8) and the ``6Hutc``/``12Hutc``/``1Dutc`` bars to UTC; shorter bars are the same
either way. :meth:`OkxVenue.window` answers OKX's pagination: the newest ``limit`` bars opening
strictly between ``before`` and ``after``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from helios_pipeline.domain.symbols import normalize_symbol, to_storage_id
from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS
from helios_pipeline.sim.market.candles import (
    COLUMNS,
    HOUR_MS,
    AnyArray,
    CandlePatch,
    KlineBlock,
)
from helios_pipeline.sim.market.feed import MarketFeed
from helios_pipeline.sim.market.sources import _Lru
from helios_pipeline.sim.market.universe import symbol_spec, usd_price
from helios_pipeline.sim.wire import fmt8, unit_interval

PatchLookup = Callable[[str, int, int], tuple[CandlePatch, ...]]
"""``(symbol, start_ms, end_ms) -> data faults`` touching 1m candles opening in that range."""

MAX_BASIS = 0.0004
"""Largest venue basis (relative); the basis is stable per symbol and UTC day."""

HK_OFFSET_MS = 8 * HOUR_MS
"""OKX's default bars of 6 hours and longer start at Hong Kong midnight (UTC+8)."""

BARS: dict[str, tuple[int, int]] = {
    "1m": (MINUTE_MS, 0), "3m": (3 * MINUTE_MS, 0), "5m": (5 * MINUTE_MS, 0),
    "15m": (15 * MINUTE_MS, 0), "30m": (30 * MINUTE_MS, 0), "1H": (HOUR_MS, 0),
    "2H": (2 * HOUR_MS, 0), "4H": (4 * HOUR_MS, 0),
    "6H": (6 * HOUR_MS, HK_OFFSET_MS), "12H": (12 * HOUR_MS, HK_OFFSET_MS),
    "1D": (DAY_MS, HK_OFFSET_MS),
    "6Hutc": (6 * HOUR_MS, 0), "12Hutc": (12 * HOUR_MS, 0), "1Dutc": (DAY_MS, 0),
}
"""OKX ``bar`` values the simulator serves: ``(length_ms, alignment offset_ms)``."""


def no_patches(symbol: str, start_ms: int, end_ms: int) -> tuple[CandlePatch, ...]:
    """The :data:`PatchLookup` of a venue without data faults."""
    return ()


def okx_number(units: int) -> str:
    """An amount in 1e-8 units as OKX writes it, without trailing zeros (``"60000.1"``)."""
    text = fmt8(units)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _power_units(exponent: int) -> int:
    """``10**exponent`` in 1e-8 units (exponent clamped to -8)."""
    return int(10 ** (max(-8, exponent) + 8))


@dataclass(frozen=True)
class OkxInstrument:
    """Trading rules of one simulated OKX spot instrument.

    Attributes:
        symbol: Storage id of the underlying simulated market (``BTCUSDT``).
        inst_id: OKX instrument id (``BTC-USDT``).
        base: Base currency.
        quote: Quote currency.
        tick_units: ``tickSz`` in 1e-8 units.
        lot_units: ``lotSz`` in 1e-8 units.
        min_units: ``minSz`` in 1e-8 units.
        volume_share: OKX volume as a share of the simulated Binance volume.
    """

    symbol: str
    inst_id: str
    base: str
    quote: str
    tick_units: int
    lot_units: int
    min_units: int
    volume_share: float


@lru_cache(maxsize=8192)
def okx_instrument(symbol: str) -> OkxInstrument:
    """The OKX rules for a storage id (``BTCUSDT``) or unified symbol.

    Ticks keep six significant digits from 1000 up and five below (BTC-USDT 0.1, ETH-USDT 0.01,
    SOL-USDT 0.01); lots are 1e-8 for prices from 10000 up and 1e-6 below; the minimum size is
    worth about one US dollar.

    Raises:
        SymbolError: The symbol cannot be split into base and quote.
    """
    spec = symbol_spec(symbol)
    magnitude = math.floor(math.log10(spec.base_price))
    digits = 6 if magnitude >= 3 else 5
    lot = _power_units(-8 if magnitude >= 4 else -6)
    min_units = max(lot, _power_units(math.floor(math.log10(1.0 / usd_price(spec.base)))))
    return OkxInstrument(
        symbol=spec.symbol, inst_id=f"{spec.base}-{spec.quote}", base=spec.base, quote=spec.quote,
        tick_units=_power_units(magnitude - digits + 1), lot_units=lot,
        min_units=min_units - min_units % lot,
        volume_share=0.3 + 0.3 * unit_interval("okx-share", spec.symbol),
    )


def symbol_of_inst_id(inst_id: str) -> str:
    """Storage id (``BTCUSDT``) of an OKX spot instrument id (``BTC-USDT``).

    Raises:
        SymbolError: ``inst_id`` is not ``BASE-QUOTE``.
    """
    return to_storage_id(normalize_symbol(inst_id.replace("-", "/", 1)))


def basis_factor(symbol: str, day: int) -> float:
    """The venue's price factor for ``symbol`` on ``day`` (days since 1970): 1 +- 0.04 %."""
    return 1.0 + MAX_BASIS * (2.0 * unit_interval("okx-basis", symbol, day) - 1.0)


def _scaled(column: AnyArray, factor: float, step: int, floor: int) -> AnyArray:
    """``column * factor`` rounded to multiples of ``step`` and at least ``floor``, as int64."""
    steps = np.rint(np.asarray(column, dtype=np.float64) * (factor / step))
    return np.maximum(floor, steps.astype(np.int64) * step)


def venue_block(block: KlineBlock, inst: OkxInstrument, day: int) -> KlineBlock:
    """1m klines of the simulated market as OKX prints them (basis, ticks, lots, share)."""
    if not len(block):
        return KlineBlock.empty()
    c = block.cols
    factor = basis_factor(inst.symbol, day)
    cols = {name: np.asarray(c[name]) for name in COLUMNS}
    for name in ("open", "high", "low", "close"):
        cols[name] = _scaled(c[name], factor, inst.tick_units, inst.tick_units)
    share = inst.volume_share
    cols["volume"] = _scaled(c["volume"], share, inst.lot_units, 0)
    cols["quote_volume"] = _scaled(c["quote_volume"], share * factor, 1, 0)
    cols["taker_base"] = np.minimum(cols["volume"], _scaled(c["taker_base"], share,
                                                            inst.lot_units, 0))
    cols["taker_quote"] = _scaled(c["taker_quote"], share * factor, 1, 0)
    return KlineBlock(cols)


def venue_price(units: int, inst: OkxInstrument, at_ms: int) -> int:
    """A simulated-market price at ``at_ms`` as OKX quotes it (basis, tick)."""
    factor = basis_factor(inst.symbol, at_ms // DAY_MS)
    return int(_scaled(np.array([units]), factor, inst.tick_units, inst.tick_units)[0])


def venue_size(units: int, inst: OkxInstrument) -> int:
    """A simulated-market quantity as an OKX size (venue share, at least one lot)."""
    return int(_scaled(np.array([units]), inst.volume_share, inst.lot_units, inst.lot_units)[0])


def aggregate_bars(block: KlineBlock, interval_ms: int, offset_ms: int) -> KlineBlock:
    """Bars of ``interval_ms`` starting where ``open + offset_ms`` is a multiple of the length."""
    if interval_ms == MINUTE_MS or not len(block):
        return block
    if not offset_ms:
        return block.aggregate(interval_ms)
    cols = dict(block.cols)
    cols["open_ms"] = cols["open_ms"] + offset_ms
    cols["close_ms"] = cols["close_ms"] + offset_ms
    bars = dict(KlineBlock(cols).aggregate(interval_ms).cols)
    bars["open_ms"] = bars["open_ms"] - offset_ms
    bars["close_ms"] = bars["close_ms"] - offset_ms
    return KlineBlock(bars)


def bar_open(ts_ms: int, bar: str) -> int:
    """Open time of the ``bar`` that contains ``ts_ms``."""
    interval, offset = BARS[bar]
    return (ts_ms + offset) // interval * interval - offset


class OkxVenue:
    """OKX candles of every listed instrument over one :class:`MarketFeed`."""

    def __init__(self, feed: MarketFeed, cache_days: int = 512) -> None:
        """Serve the venue view of ``feed``; up to ``cache_days`` closed days are cached."""
        self.feed = feed
        self._days = _Lru(cache_days)

    def minutes(self, inst: OkxInstrument, day: int, now_ms: int,
                patches: PatchLookup = no_patches) -> KlineBlock:
        """The venue's 1m candles of ``day`` opened by ``now_ms`` (the last one as of now)."""
        start = day * DAY_MS
        found = patches(inst.symbol, start, start + DAY_MS)
        if now_ms < start + DAY_MS:  # the day is not over: as of now, uncached
            raw = self.feed.minutes_of_day(inst.symbol, day, now_ms)
            return venue_block(raw, inst, day).patched(found, inst.tick_units)
        return self._days.get((inst.symbol, day, found), lambda: venue_block(
            self.feed.day_1m(inst.symbol, day), inst, day).patched(found, inst.tick_units))

    def window(self, inst: OkxInstrument, bar: str, *, after: int | None, before: int | None,
               limit: int, now_ms: int, patches: PatchLookup = no_patches) -> KlineBlock:
        """The newest ``limit`` bars opening in ``(before, after)`` and by ``now_ms``, ascending.

        ``after`` and ``before`` are exclusive, either may be None (no bound). Gaps are skipped,
        not filled: when bars are missing, older ones make up the ``limit``.
        """
        interval, offset = BARS[bar]
        top = now_ms if after is None else min(after - 1, now_ms)
        lower = -1 if before is None else before
        if top <= lower or top < 0:
            return KlineBlock.empty()
        last_minute = min(bar_open(top, bar) + interval - MINUTE_MS, now_ms)
        blocks = self._collect(inst, last_minute, lower, top, (interval, offset, limit), now_ms,
                               patches)
        bars = aggregate_bars(KlineBlock.concat(blocks[::-1]), interval, offset)
        opens = bars.open_ms
        keep = np.flatnonzero((opens > lower) & (opens <= top))[-limit:]
        return bars.take(keep) if len(keep) != len(bars) else bars

    def _collect(self, inst: OkxInstrument, last_minute: int, lower: int, top: int,
                 shape: tuple[int, int, int], now_ms: int,
                 patches: PatchLookup) -> list[KlineBlock]:
        """1m blocks, newest day first, until ``limit + 1`` bars are covered or none are left.

        The extra bar makes sure the oldest of the ``limit`` bars has all its minutes.
        """
        interval, offset, limit = shape
        blocks: list[KlineBlock] = []
        count, oldest = 0, None
        day = self.feed.previous_day(inst.symbol, last_minute // DAY_MS)
        while day is not None and count <= limit:
            block = self.minutes(inst, day, now_ms, patches).until(last_minute)
            if len(block):
                blocks.append(block)
                buckets = np.unique((block.open_ms + offset) // interval)
                opens = buckets * interval - offset
                buckets = buckets[(opens > lower) & (opens <= top)]
                shared = len(buckets) and oldest is not None and int(buckets[-1]) == oldest
                count += len(buckets) - int(bool(shared))
                oldest = int(buckets[0]) if len(buckets) else oldest
            if day * DAY_MS <= lower + 1:
                break
            day = self.feed.previous_day(inst.symbol, day - 1)
        return blocks


def candle_rows(bars: KlineBlock, interval_ms: int, now_ms: int) -> list[list[str]]:
    """OKX candle rows, newest first: ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``.

    For spot, ``vol`` is in the base currency and both ``volCcy`` and ``volCcyQuote`` in the
    quote currency; ``confirm`` is ``"1"`` once the bar's period is over.
    """
    c = bars.cols
    rows: list[list[str]] = []
    for i in range(len(bars) - 1, -1, -1):
        open_ms = int(c["open_ms"][i])
        quote = okx_number(int(c["quote_volume"][i]))
        rows.append([str(open_ms), *(okx_number(int(c[name][i])) for name in
                                     ("open", "high", "low", "close", "volume")),
                     quote, quote, "1" if open_ms + interval_ms <= now_ms else "0"])
    return rows

