"""Line protocol for the InfluxDB mirror, built with ``influxdb_client``.

One measurement per data kind: ``ohlcv`` for candles, and ``trade`` / ``ticker`` / ``book`` for
hot-tier ticks (the tick's kind). Tags are ``exchange``, ``symbol`` (ccxt unified) and, for
candles, ``timeframe``. InfluxDB stores every field as a float64 (fine for dashboards; the files
stay the exact record), so a money field is written as the double nearest its exact decimal
(``domain.decimal_float``) in the shortest text that reads back as that double: InfluxDB stores
exactly what it would store from the exchange's own text. Absent values are left out, never
written as 0; ``trades`` is an integer field.

Candles go through influxdb-client's DataFrame serializer, a whole table at a time (about fifteen
times faster than a ``Point`` per candle, docs/influx.md); ticks, a few per call, through
``Point`` from their ``Decimal`` values.

Timestamps: candles at millisecond precision (their open time). Ticks at microsecond precision:
the exchange time in ms plus ``seq % 1000`` microseconds, because two trades of one symbol in
the same millisecond would otherwise be one point in InfluxDB (same series, same time) and one
of them would be lost. The writer's ``seq`` is strictly increasing per stream, so up to 1,000
ticks of one stream in one millisecond stay distinct, and re-sending a tick overwrites itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Literal

import pyarrow as pa
from influxdb_client.client.write.dataframe_serializer import data_frame_to_list_of_points
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import PointSettings
from influxdb_client.domain.write_precision import WritePrecision

from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.storage.candle_codec import to_frame, to_table
from helios_pipeline.storage.candles import candle_columns

Precision = Literal["ms", "us"]
CANDLE_MEASUREMENT = "ohlcv"
CANDLE_PRECISION: Precision = "ms"
TICK_PRECISION: Precision = "us"
_CANDLE_DECIMALS = ("open", "high", "low", "close", "volume", "quote_volume",
                    "taker_buy_volume", "taker_buy_quote_volume")
_CANDLE_TAGS = ["exchange", "symbol", "timeframe"]
_POINT_SETTINGS = PointSettings()
_TICK_DECIMALS = ("price", "qty", "bid", "ask")
_Fields = dict[str, Decimal | int | None]


def candle_line(exchange: str, candle: OHLCVData) -> str:
    """One candle as a line of measurement ``ohlcv`` at its open time (ms)."""
    return candle_lines(exchange, [candle])[0]


def candle_lines(exchange: str, candles: Sequence[OHLCVData]) -> list[str]:
    """Candles (of any symbols and timeframes) as lines, in order.

    Args:
        exchange: ccxt exchange id the candles came from (tag ``exchange``).
        candles: The candles.
    """
    if not candles:
        return []
    table = to_table(candle_columns(candles), "candles for InfluxDB")
    return _frame_lines(exchange, table, [c.symbol for c in candles],
                        [c.timeframe.value for c in candles])


def candle_table_lines(exchange: str, symbol: str, timeframe: Timeframe,
                       table: pa.Table) -> list[str]:
    """Candles of one series (a table with ``OHLCV_SCHEMA``, e.g. a partition) as lines."""
    if not table.num_rows:
        return []
    return _frame_lines(exchange, table, symbol, timeframe.value)


def _frame_lines(exchange: str, table: pa.Table, symbol: str | list[str],
                 timeframe: str | list[str]) -> list[str]:
    frame = to_frame(table, as_float=True)[[*_CANDLE_DECIMALS, "trades"]]
    frame["exchange"], frame["symbol"], frame["timeframe"] = exchange, symbol, timeframe
    lines: list[str] = data_frame_to_list_of_points(  # type: ignore[no-untyped-call]
        frame, _POINT_SETTINGS, precision=WritePrecision.MS,
        data_frame_measurement_name=CANDLE_MEASUREMENT, data_frame_tag_columns=_CANDLE_TAGS)
    return lines


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
