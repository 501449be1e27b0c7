"""Tickers, order books and recent trades of the simulated OKX venue, as OKX v5 writes them.

Everything derives from the venue's 1m candles and the simulated market's trade tape at "now":
the last price is the last trade (through the venue basis and tick), the 24-hour statistics
are the venue candles opened in the last 24 hours, and the book is a small synthetic ladder
around the last price that changes every second and is deterministic for a given second.

A ``divergence`` data fault over the current minute moves the live quotes with the candles: the
last price, the book and the recent trades of its window are multiplied by its factor (rounded
down to the tick), so a poller of ``/market/ticker(s)`` sees the venue diverge while it lasts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helios_pipeline.domain.timeframe import DAY_MS, MINUTE_MS
from helios_pipeline.sim.binance import quotes
from helios_pipeline.sim.market.candles import KlineBlock
from helios_pipeline.sim.market.universe import symbol_spec
from helios_pipeline.sim.okx.venue import (
    HK_OFFSET_MS,
    OkxInstrument,
    OkxVenue,
    PatchLookup,
    no_patches,
    okx_number,
    venue_price,
    venue_size,
)
from helios_pipeline.sim.wire import SCALE, stable_seed, to_units

Level = list[str]


def _diverged(units: int, inst: OkxInstrument, at_ms: int, patches: PatchLookup) -> int:
    """``units`` times the factor of each ``divergence`` fault over ``at_ms``'s minute."""
    minute = at_ms - at_ms % MINUTE_MS
    for patch in patches(inst.symbol, minute, minute + MINUTE_MS):
        if patch.kind == "divergence":
            raw = units * patch.factor.numerator // patch.factor.denominator
            units = max(inst.tick_units, raw // inst.tick_units * inst.tick_units)
    return units


def _last(venue: OkxVenue, inst: OkxInstrument, now_ms: int,
          patches: PatchLookup) -> tuple[int, int, bool] | None:
    """``(price, size, taker_bought)`` of the venue's last trade, in 1e-8 units."""
    found = quotes.last_trade(venue.feed, inst.symbol, now_ms)
    if found is None:
        return None
    price, qty, bought = found
    return (_diverged(venue_price(price, inst, now_ms), inst, now_ms, patches),
            venue_size(qty, inst), bought)


def book(venue: OkxVenue, inst: OkxInstrument, now_ms: int, depth: int,
         patches: PatchLookup = no_patches) -> tuple[list[Level], list[Level]]:
    """``depth`` bid and ask levels ``[px, sz, "0", orders]`` around the last trade."""
    last = _last(venue, inst, now_ms, patches)
    if last is None or depth < 1:
        return [], []
    tick = inst.tick_units
    price, _, taker_bought = last
    best_bid = max(tick, price - tick if taker_bought else price)
    rng = np.random.default_rng([stable_seed("okx-book", inst.symbol), max(0, now_ms // 1000)])
    mean_lots = max(1.0, 2.0 * symbol_spec(inst.symbol).avg_trade_notional
                    / (price / SCALE) / (inst.lot_units / SCALE))

    def side(start: int, direction: int) -> list[Level]:
        gaps = rng.geometric(0.6, depth)
        offsets = np.cumsum(gaps) - gaps[0]  # the best level sits on the touch
        lots = np.maximum(1, np.rint(rng.lognormal(np.log(mean_lots), 1.0, depth)))
        orders = rng.integers(1, 12, depth)
        levels: list[Level] = []
        for offset, size, count in zip(offsets.tolist(), lots.astype(np.int64).tolist(),
                                       orders.tolist(), strict=True):
            level = start + direction * offset * tick
            if level <= 0:
                break
            levels.append([okx_number(level), okx_number(size * inst.lot_units), "0",
                           str(count)])
        return levels

    return side(best_bid, -1), side(best_bid + tick, 1)


def book_json(venue: OkxVenue, inst: OkxInstrument, now_ms: int, depth: int,
              patches: PatchLookup = no_patches) -> dict[str, Any]:
    """One ``/api/v5/market/books`` entry."""
    bids, asks = book(venue, inst, now_ms, depth, patches)
    return {"asks": asks, "bids": bids, "ts": str(now_ms)}


def _open_at(block: KlineBlock, start_ms: int) -> int:
    """Open of the first candle opening at or after ``start_ms`` (0 when there is none)."""
    index = int(np.searchsorted(block.open_ms, start_ms, side="left"))
    return int(block.cols["open"][index]) if index < len(block) else 0


def ticker_json(venue: OkxVenue, inst: OkxInstrument, now_ms: int,
                patches: PatchLookup = no_patches) -> dict[str, Any]:
    """One ``/api/v5/market/ticker(s)`` entry over the venue candles of the last 24 hours."""
    day = venue.window(inst, "1m", after=now_ms + 1, before=now_ms - DAY_MS, limit=1440,
                       now_ms=now_ms, patches=patches)
    c = day.cols
    last = _last(venue, inst, now_ms, patches)
    bids, asks = book(venue, inst, now_ms, 1, patches)
    zero = ["0", "0"]
    bid, ask = (bids or [zero])[0], (asks or [zero])[0]
    has = bool(len(day))
    hk_day = (now_ms + HK_OFFSET_MS) // DAY_MS * DAY_MS - HK_OFFSET_MS
    return {
        "instType": "SPOT",
        "instId": inst.inst_id,
        "last": okx_number(last[0] if last else 0),
        "lastSz": okx_number(last[1] if last else 0),
        "askPx": ask[0], "askSz": ask[1], "bidPx": bid[0], "bidSz": bid[1],
        "open24h": okx_number(int(c["open"][0]) if has else 0),
        "high24h": okx_number(int(c["high"].max()) if has else 0),
        "low24h": okx_number(int(c["low"].min()) if has else 0),
        "volCcy24h": okx_number(sum(c["quote_volume"].tolist())),
        "vol24h": okx_number(sum(c["volume"].tolist())),
        "ts": str(now_ms),
        "sodUtc0": okx_number(_open_at(day, now_ms // DAY_MS * DAY_MS)),
        "sodUtc8": okx_number(_open_at(day, hk_day)),
    }


def trades_json(venue: OkxVenue, inst: OkxInstrument, now_ms: int, limit: int,
                patches: PatchLookup = no_patches) -> list[dict[str, Any]]:
    """``/api/v5/market/trades`` entries: the last ``limit`` trades, newest first."""
    fills = venue.feed.recent_trades(inst.symbol, limit, now_ms)
    return [{
        "instId": inst.inst_id,
        "side": "sell" if fill["isBuyerMaker"] else "buy",
        "sz": okx_number(venue_size(to_units(fill["qty"]), inst)),
        "px": okx_number(_diverged(venue_price(to_units(fill["price"]), inst, fill["time"]),
                                   inst, fill["time"], patches)),
        "source": "0",
        "tradeId": str(fill["id"]),
        "ts": str(fill["time"]),
    } for fill in reversed(fills)]
