"""The boundary to ccxt's untyped surface: response capture, URL override and payload parsing.

Everything that handles ccxt objects (``Any``) lives here and hands typed values back:

* :func:`ccxt_class` subclasses ``ccxt.async_support.<id>`` so that the status and headers of
  every HTTP response are seen (``on_rest_response``, called once per response inside ccxt's
  ``fetch``) and recorded for the call that made the request, through a context variable that
  each asyncio task carries on its own; ccxt's shared ``last_response_headers`` would mix up
  concurrent requests. A 2xx body that is not JSON raises :class:`ExchangeDataError` instead of
  reaching ccxt's parsers as a string.
* :func:`override_urls` points an exchange at another host (simulator, testnet, proxy).
* :func:`kline_rows`, :func:`unified_rows`, :func:`market_from_ccxt`, :func:`ticker_point` turn
  payloads into domain objects with exact ``Decimal`` money; a row that does not parse raises
  :class:`ExchangeDataError` for the whole payload, so nothing is half-stored.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pyarrow as pa

from helios_pipeline.domain.columns import (
    CLOSE,
    CLOSE_TIME,
    HIGH,
    LOW,
    OHLCV_COLUMNS,
    OPEN,
    QUOTE_VOLUME,
    TAKER_BUY_QUOTE_VOLUME,
    TAKER_BUY_VOLUME,
    TIMESTAMP,
    TRADES,
    VOLUME,
)
from helios_pipeline.domain.models import Market, MarketDataPoint, OHLCVData
from helios_pipeline.domain.schema import DECIMAL_TYPE, EXCHANGE_SCHEMA, TIMESTAMP_TYPE
from helios_pipeline.domain.timeframe import Timeframe, ms_to_datetime
from helios_pipeline.exchanges.errors import ExchangeDataError

KLINE_FIELDS = 12
_OHLCV_NAMES = ("open", "high", "low", "close", "volume")
# Positions of the kline fields in a /api/v3/klines row.
_KLINE_DECIMAL_FIELDS = {OPEN: 1, HIGH: 2, LOW: 3, CLOSE: 4, VOLUME: 5, QUOTE_VOLUME: 7,
                         TAKER_BUY_VOLUME: 9, TAKER_BUY_QUOTE_VOLUME: 10}
_KLINE_INT_FIELDS = (0, 6, 8)  # open time, close time, trades


@dataclass
class ResponseRecord:
    """One attempt's HTTP response, as the ccxt subclass saw it."""

    status: int | None = None
    url: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


CURRENT_RESPONSE: contextvars.ContextVar[ResponseRecord | None] = contextvars.ContextVar(
    "helios_exchange_response", default=None
)
ResponseListener = Callable[[int, str, Mapping[str, str]], None]
RateLimitsListener = Callable[[list[Mapping[str, Any]]], bool]


def current_url() -> str:
    """URL of the response the current task's call last received (for messages)."""
    record = CURRENT_RESPONSE.get()
    return record.url if record is not None and record.url else "no response"


def create_exchange(
    exchange_id: str,
    config: Mapping[str, Any],
    on_response: ResponseListener,
    on_rate_limits: RateLimitsListener,
) -> Any:
    """A capturing ccxt async exchange whose responses go to the two listeners.

    Raises:
        ValueError: ccxt has no exchange of that id.
    """
    exchange = ccxt_class(exchange_id)(dict(config))
    exchange.number = Decimal
    exchange.helios_listener = on_response
    exchange.helios_rate_limits = on_rate_limits
    return exchange


@cache
def ccxt_class(exchange_id: str) -> Any:
    """A subclass of ``ccxt.async_support.<exchange_id>`` that reports every response.

    Raises:
        ValueError: ccxt has no exchange of that id.
    """
    found = getattr(ccxt_async, exchange_id, None)
    if exchange_id not in ccxt_async.exchanges or not isinstance(found, type):
        raise ValueError(
            f"Unknown ccxt exchange id {exchange_id!r} (HELIOS_EXCHANGE); use a lower-case id "
            "from ccxt.exchanges such as 'binance'."
        )
    base: Any = found

    def on_rest_response(self: Any, code: Any, reason: Any, url: Any, method: Any,
                         headers: Any, body: Any, *rest: Any) -> Any:
        record = CURRENT_RESPONSE.get()
        plain = {str(k): str(v) for k, v in dict(headers or {}).items()}
        if record is not None:
            record.status, record.url, record.body = code, str(url), str(body)[:300]
            record.headers = {k.lower(): v for k, v in plain.items()}
        listener = self.__dict__.get("helios_listener")
        if listener is not None:
            listener(code, str(url), plain)
        return base.on_rest_response(self, code, reason, url, method, headers, body, *rest)

    def parse_json(self: Any, http_response: Any) -> Any:
        result = base.parse_json(self, http_response)
        record = CURRENT_RESPONSE.get()
        if (result is None and record is not None and record.status is not None
                and 200 <= record.status < 300 and str(http_response).strip()):
            raise ExchangeDataError("the response body is not valid JSON", record.url,
                                    http_response)
        if isinstance(result, dict) and isinstance(result.get("rateLimits"), list):
            limits_listener = self.__dict__.get("helios_rate_limits")
            if limits_listener is not None:
                limits_listener(result["rateLimits"])
        return result

    return type(f"Helios{base.__name__}", (base,),
                {"on_rest_response": on_rest_response, "parse_json": parse_json})


def is_ccxt_error(error: BaseException) -> bool:
    """Whether ccxt raised ``error`` on purpose (as opposed to choking on a payload)."""
    return isinstance(error, ccxt.BaseError)


def override_urls(urls: dict[str, Any], base_url: str) -> None:
    """Point an exchange's REST (and spot websocket) URLs at ``base_url``, in place.

    Every ``http(s)`` entry of ``urls['api']`` keeps its path and gets ``base_url``'s scheme and
    host: Binance's ``public``/``private`` become ``base_url + '/api/v3'`` and ``v1``
    ``base_url + '/api/v1'``; the futures entries move too, so no request can leave for the real
    exchange. OKX keeps one entry, ``rest`` (``https://{hostname}``; ccxt adds ``/api/v5`` per
    request), which becomes ``base_url`` itself. ``urls['api']['ws']['spot']``, when present
    (ccxt.pro), becomes ``ws://HOST:PORT/ws``.
    """
    origin = base_url.rstrip("/")
    api = urls.get("api")
    if not isinstance(api, dict):
        urls["api"] = {"public": origin, "private": origin}
        return
    for key, value in api.items():
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            path = value.split("://", 1)[1].partition("/")[2]
            api[key] = f"{origin}/{path}" if path else origin
    ws = api.get("ws")
    if isinstance(ws, dict) and "spot" in ws:
        host = origin.split("://", 1)[1]
        scheme = "wss" if origin.startswith("https://") else "ws"
        ws["spot"] = f"{scheme}://{host}/ws"


# --------------------------------------------------------------------------- scalar parsing


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _decimal(value: object, name: str) -> Decimal:
    """Exact decimal from a JSON string or integer; floats are refused (digits already lost)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"{name} must be a decimal string, got {value!r}")
    number = Decimal(value.strip() if isinstance(value, str) else value)
    if not number.is_finite():
        raise ValueError(f"{name} is not a finite number: {value!r}")
    return number


def optional_decimal(value: object) -> Decimal | None:
    """Exact decimal of a ccxt value (``Decimal`` when ``exchange.number`` is), else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(value if isinstance(value, Decimal | int) else str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


# --------------------------------------------------------------------------- candles


def kline_rows(
    rows: object, symbol: str, timeframe: Timeframe, source: str
) -> list[tuple[int, OHLCVData]]:
    """Parse a Binance ``/api/v3/klines`` answer into ``(open_ms, candle)`` pairs.

    Raises:
        ExchangeDataError: The answer is not a list of 12-field rows, or a field does not parse.
    """
    if not isinstance(rows, list):
        raise ExchangeDataError("expected a JSON array of klines", source, rows)
    return [_kline(row, symbol, timeframe, source) for row in rows]


def _kline(row: object, symbol: str, timeframe: Timeframe, source: str) -> tuple[int, OHLCVData]:
    if not isinstance(row, list) or len(row) != KLINE_FIELDS:
        size = len(row) if isinstance(row, list) else type(row).__name__
        raise ExchangeDataError(f"a kline row must be an array of {KLINE_FIELDS} fields, got "
                                f"{size}", source, row)
    try:
        open_ms = _integer(row[0], "open time")
        o, h, low, c, v = (_decimal(x, n) for x, n in zip(row[1:6], _OHLCV_NAMES, strict=True))
        candle = OHLCVData(
            symbol=symbol, timestamp=ms_to_datetime(open_ms), timeframe=timeframe,
            open=o, high=h, low=low, close=c, volume=v,
            trades=_integer(row[8], "trades"),
            taker_buy_volume=_decimal(row[9], "taker buy volume"),
            quote_volume=_decimal(row[7], "quote volume"),
            taker_buy_quote_volume=_decimal(row[10], "taker buy quote volume"),
            close_time_ms=_integer(row[6], "close time"),
        )
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ExchangeDataError(f"kline row does not parse ({exc})", source, row) from None
    return open_ms, candle


def kline_table(rows: list[list[Any]]) -> pa.Table | None:
    """Binance kline rows parsed in bulk into exact Arrow columns (:data:`EXCHANGE_SCHEMA`).

    The fast path of :func:`kline_rows` for the common case: times, trade counts and ids are JSON
    integers and every decimal is a JSON string Arrow parses into ``decimal128(38, 18)`` without
    losing a digit. Anything else (a string time, an integer price, text Arrow refuses, more than
    18 decimal places, a row of the wrong size) returns ``None``: the caller parses that page row
    by row with :func:`kline_rows`, which accepts what it accepts today and explains the rest.
    """
    if not rows:
        return EXCHANGE_SCHEMA.empty_table()
    if any(not isinstance(row, list) or len(row) != KLINE_FIELDS for row in rows):
        return None
    columns = list(zip(*rows, strict=True))
    if any(set(map(type, columns[i])) != {int} for i in _KLINE_INT_FIELDS) or any(
            set(map(type, columns[i])) != {str} for i in _KLINE_DECIMAL_FIELDS.values()):
        return None
    try:
        arrays = {name: pa.array(columns[i], pa.string()).cast(DECIMAL_TYPE)
                  for name, i in _KLINE_DECIMAL_FIELDS.items()}
        arrays[TIMESTAMP] = pa.array(columns[0], pa.int64()).cast(TIMESTAMP_TYPE)
        arrays[TRADES] = pa.array(columns[8], pa.int64())
        arrays[CLOSE_TIME] = pa.array(columns[6], pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return pa.Table.from_arrays([arrays[name] for name in OHLCV_COLUMNS], schema=EXCHANGE_SCHEMA)


def unified_rows(
    rows: object, symbol: str, timeframe: Timeframe, source: str
) -> list[tuple[int, OHLCVData]]:
    """Parse ccxt unified OHLCV rows ``[ts, o, h, l, c, v]`` (trade/taker fields unknown).

    Raises:
        ExchangeDataError: The answer is not a list of 6-field rows, or a field does not parse.
    """
    if not isinstance(rows, list):
        raise ExchangeDataError("expected a list of OHLCV rows", source, rows)
    out: list[tuple[int, OHLCVData]] = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 6:
            raise ExchangeDataError("an OHLCV row must have 6 fields", source, row)
        values = [optional_decimal(x) for x in row[1:6]]
        if not isinstance(row[0], int) or any(x is None for x in values):
            raise ExchangeDataError("OHLCV row does not parse", source, row)
        o, h, low, c, v = (x for x in values if x is not None)
        out.append((row[0], OHLCVData(symbol, ms_to_datetime(row[0]), timeframe, o, h, low, c, v,
                                      trades=None, taker_buy_volume=None)))
    return out


# --------------------------------------------------------------------------- markets, tickers


def _filters(info: object) -> dict[str, Mapping[str, Any]]:
    """Binance symbol ``filters`` keyed by ``filterType`` (empty for other exchanges)."""
    raw = info.get("filters") if isinstance(info, Mapping) else None
    if not isinstance(raw, list):
        return {}
    return {f["filterType"]: f for f in raw if isinstance(f, Mapping) and "filterType" in f}


def _tick(precision: object, precision_mode: object) -> Decimal | None:
    """Increment from a ccxt precision value (a tick, or a count of decimal places)."""
    value = optional_decimal(precision)
    if value is None:
        return None
    if precision_mode == ccxt.DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    return value if precision_mode == ccxt.TICK_SIZE else None


def market_from_ccxt(exchange: str, market: Mapping[str, Any], precision_mode: object) -> Market:
    """A :class:`Market` from a loaded ccxt market; the venue's own filter strings win."""
    filters = _filters(market.get("info"))
    price_f = filters.get("PRICE_FILTER", {})
    lot_f = filters.get("LOT_SIZE", {})
    notional_f = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}

    def pick(raw: object, fallback: object) -> Decimal | None:
        return optional_decimal(raw) if raw is not None else optional_decimal(fallback)

    return Market(
        exchange=exchange,
        symbol=str(market["symbol"]),
        exchange_symbol=str(market["id"]),
        base=str(market.get("base", "")),
        quote=str(market.get("quote", "")),
        active=market.get("active") is not False,
        tick_size=pick(price_f.get("tickSize"), _tick(precision.get("price"), precision_mode)),
        lot_size=pick(lot_f.get("stepSize"), _tick(precision.get("amount"), precision_mode)),
        min_qty=pick(lot_f.get("minQty"), amount.get("min")),
        max_qty=pick(lot_f.get("maxQty"), amount.get("max")),
        min_notional=pick(notional_f.get("minNotional"), (limits.get("cost") or {}).get("min")),
    )


def ticker_point(ticker: object, symbol: str, exchange: str, now_s: float) -> MarketDataPoint:
    """A :class:`MarketDataPoint` from a ccxt ticker (bid, ask, spread exact).

    The observation time is the ticker's own timestamp; when the venue sends none, the time of
    receipt is used.

    Raises:
        ExchangeDataError: The ticker lacks a last price, bid, ask or base volume.
    """
    source = f"{exchange} ticker {symbol}"
    if not isinstance(ticker, Mapping):
        raise ExchangeDataError("expected a ticker object", source, ticker)
    wanted = {name: optional_decimal(ticker.get(key)) for name, key in
              (("price", "last"), ("volume", "baseVolume"), ("bid", "bid"), ("ask", "ask"))}
    missing = [name for name, value in wanted.items() if value is None]
    if missing:
        raise ExchangeDataError(f"the ticker has no {', '.join(missing)}", source,
                                ticker.get("info", ticker))
    price, volume, bid, ask = (v for v in wanted.values() if v is not None)
    stamp = ticker.get("timestamp")
    ts_ms = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else int(now_s * 1000)
    return MarketDataPoint(symbol=symbol, timestamp=ms_to_datetime(ts_ms), price=price,
                           volume=volume, bid=bid, ask=ask, spread=ask - bid, source=exchange)
