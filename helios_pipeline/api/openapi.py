"""The read API's OpenAPI 3.1 description, written by hand to say what each answer means."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_DENIALS = {
    "400": _answer("A bad argument; the message names it and what it accepts."),
    "401": _answer("No token, a malformed Authorization header, or an unknown, expired or "
                   "revoked token."),
    "403": _answer("The token's scopes do not cover this data kind, symbol or tier."),
    "413": _answer("The URL or the request body is over the service's limit."),
    "429": {**_answer("Over the token's rate limit; retry after `Retry-After` seconds."),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    "504": _answer("The query ran past the service's deadline."),
}

_SYMBOL = {"name": "symbol", "in": "path", "required": True,
           "description": "Base and quote, as `BTC-USDT` or `BTCUSDT`.",
           "schema": {"type": "string", "example": "BTC-USDT"}}
_EXCHANGE = {"name": "exchange", "in": "query", "required": False,
             "description": "ccxt exchange id (default: the primary venue).",
             "schema": {"type": "string"}}
_DECIMAL = {"type": "string", "description": "An exact decimal, e.g. `61001.5`.",
            "pattern": r"^-?\d+(\.\d+)?$"}


def _get(summary: str, parameters: list[dict[str, Any]], ok: str, schema: str,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": ok, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema}"}}}},
        **_DENIALS, **(extra or {})}
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses,
                    "security": [{"bearer": []}]}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_PATHS: dict[str, Any] = {
    "/v1/price/{symbol}": _get(
        "Newest traded price (hot tier; kind `price`).", [_SYMBOL, _EXCHANGE],
        "The price as an exact decimal string.", "Price",
        {"404": _answer("The hot tier holds no price for the symbol."),
         "503": _answer("The hot tier (Redis) is down or not configured.")}),
    "/v1/ohlcv/{symbol}": _get(
        "Closed candles in [start, end) or the last `limit` (kind `ohlcv`).",
        [_SYMBOL, _EXCHANGE,
         _query("timeframe", "1m 5m 15m 1h 4h 1d, or any other length aggregated from 1m.",
                {"type": "string", "default": "1m"}),
         _query("start", "First open time: ISO 8601 with a zone, a day, or epoch ms.",
                {"type": "string"}),
         _query("end", "Open times before it (default: now).", {"type": "string"}),
         _query("limit", "Only the last N closed candles.",
                {"type": "integer", "minimum": 1})],
        "Candles, oldest first, each with the tier it came from.", "Candles",
        {"410": _answer("An earlier version asked for was pruned."),
         "503": _answer("A tier the answer needs is down.")}),
    "/v1/quality/{day}": _get(
        "Data-quality status of a UTC day (kind `quality`).",
        [{"name": "day", "in": "path", "required": True,
          "schema": {"type": "string", "format": "date"}},
         _query("symbol", "Only this symbol (default: every one the token reads).",
                {"type": "string"})],
        "Overall status and each symbol's.", "Quality",
        {"404": _answer("No stored data for that day (or symbol).")}),
    "/v1/indicators/{symbol}": _get(
        "Technical indicators (kind `indicators`).", [_SYMBOL],
        "Indicator values.", "Indicators",
        {"501": _answer("No indicator provider in this build yet.")}),
    "/openapi.json": {"get": {"summary": "This description.", "security": [],
                              "responses": {"200": {"description": "OpenAPI 3.1 document.",
                                                    "content": {"application/json": {}}}}}},
}

_CANDLE = {"type": "object", "required": ["time", "open", "high", "low", "close", "volume",
                                          "tier"],
           "properties": {"time": {"type": "string", "format": "date-time"},
                          "open": _DECIMAL, "high": _DECIMAL, "low": _DECIMAL, "close": _DECIMAL,
                          "volume": _DECIMAL, "quote_volume": _DECIMAL,
                          "trades": {"type": ["integer", "null"]},
                          "partial_bucket": {"type": "boolean"},
                          "tier": {"enum": ["warm", "archive", "current", "hot"]}}}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
    "Price": {"type": "object", "required": ["symbol", "exchange", "price", "tier"],
              "properties": {"symbol": {"type": "string"}, "exchange": {"type": "string"},
                             "price": _DECIMAL, "tier": {"const": "hot"}}},
    "Candles": {"type": "object", "required": ["symbol", "timeframe", "exchange", "candles"],
                "properties": {"symbol": {"type": "string"}, "timeframe": {"type": "string"},
                               "exchange": {"type": "string"},
                               "candles": {"type": "array", "items": _CANDLE}}},
    "Quality": {"type": "object", "required": ["day", "status", "symbols"],
                "properties": {"day": {"type": "string", "format": "date"},
                               "exchange": {"type": "string"},
                               "status": {"enum": ["ok", "warn", "fail"]},
                               "report_written": {"type": "boolean"},
                               "reasons": {"type": "array", "items": {"type": "string"}},
                               "symbols": {"type": "array", "items": {"type": "object"}}}},
    "Indicators": {"type": "object", "properties": {"symbol": {"type": "string"},
                                                    "indicators": {}}},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Helios read API", "version": "1",
                 "description": "Market data over HTTP with scoped bearer tokens "
                                "(`helios tokens create`). Prices are exact decimal strings."},
        "paths": _PATHS,
        "components": {"schemas": _SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
