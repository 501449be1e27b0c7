"""Line protocol for the InfluxDB mirror, built with ``influxdb_client.Point``.

One measurement per data kind: ``ohlcv`` for candles, and ``trade`` / ``ticker`` / ``book`` for
hot-tier ticks (the tick's kind). Tags are ``exchange``, ``symbol`` (ccxt unified) and, for
candles, ``timeframe``. Money fields are written from their ``Decimal`` values, so every digit the
exchange sent is in the line; InfluxDB itself stores a float64 (fine for dashboards; the files
stay the exact record).

Timestamps: candles at millisecond precision (their open time). Ticks at microsecond precision:
the exchange time in ms plus ``seq % 1000`` microseconds, because two trades of one symbol in
the same millisecond would otherwise be one point in InfluxDB (same series, same time) and one
of them would be lost. The writer's ``seq`` is strictly increasing per stream, so up to 1,000
ticks of one stream in one millisecond stay distinct, and re-sending a tick overwrites itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import datetime_to_ms

Precision = Literal["ms", "us"]
CANDLE_MEASUREMENT = "ohlcv"
CANDLE_PRECISION: Precision = "ms"
TICK_PRECISION: Precision = "us"
_CANDLE_DECIMALS = ("open", "high", "low", "close", "volume", "quote_volume",
                    "taker_buy_volume", "taker_buy_quote_volume")
_TICK_DECIMALS = ("price", "qty", "bid", "ask")
_Fields = dict[str, Decimal | int | None]


def candle_line(exchange: str, candle: OHLCVData) -> str:
    """One candle as a line of measurement ``ohlcv`` at its open time (ms).

    Args:
        exchange: ccxt exchange id the candle came from (tag ``exchange``).
        candle: The candle; ``None`` fields are left out, never written as 0.
    """
    fields: _Fields = {name: getattr(candle, name) for name in _CANDLE_DECIMALS}
    fields["trades"] = candle.trades
    tags = {"exchange": exchange, "symbol": candle.symbol, "timeframe": candle.timeframe.value}
    return _line(CANDLE_MEASUREMENT, tags, fields, datetime_to_ms(candle.timestamp),
                 WritePrecision.MS)


def candle_lines(exchange: str, candles: Iterable[OHLCVData]) -> list[str]:
    """:func:`candle_line` of each candle, in order."""
    return [candle_line(exchange, candle) for candle in candles]


def tick_line(tick: Tick) -> str:
    """One tick as a line of measurement ``tick.kind`` (µs, see the module docstring)."""
    time_us = tick.exchange_ts_ms * 1000 + tick.seq % 1000
    fields: _Fields = {name: getattr(tick, name) for name in _TICK_DECIMALS}
    fields["event_id"] = tick.event_id
    fields["seq"] = tick.seq
    tags = {"exchange": tick.exchange, "symbol": tick.symbol}
    return _line(tick.kind, tags, fields, time_us, WritePrecision.US)


def tick_lines(ticks: Iterable[Tick]) -> list[str]:
    """:func:`tick_line` of each tick, in order."""
    return [tick_line(tick) for tick in ticks]


def _line(measurement: str, tags: dict[str, str], fields: _Fields, time: int,
          precision: str) -> str:
    """Line protocol of one point through ``influxdb_client.Point`` (``None`` fields left out)."""
    point = Point(measurement)  # type: ignore[no-untyped-call]
    for key, value in tags.items():
        point.tag(key, value)  # type: ignore[no-untyped-call]
    for key, field in fields.items():
        if field is not None:
            # Plain notation: "0E-18" and "1E+3" are Decimal's own text, not every parser's.
            exact = _Plain(field) if isinstance(field, Decimal) else field
            point.field(key, exact)  # type: ignore[no-untyped-call]
    point.time(time, precision)  # type: ignore[no-untyped-call]
    return str(point.to_line_protocol())  # type: ignore[no-untyped-call]


class _Plain(Decimal):
    """A Decimal whose text is plain notation (``Point`` writes ``str(value)``)."""

    __slots__ = ()

    def __str__(self) -> str:
        """Fixed-point text with every digit (``format(value, 'f')``)."""
        return format(self, "f")  # Decimal.__format__: no copy, no recursion into __str__
