"""The read API over real HTTP: uvicorn on a free port, candles from the simulated exchange, Redis.

One data root per module (a day of BTC/USDT ingested from the simulated Binance, a ticker in a
real Redis); each test starts its own server (its own limits and access log) on that root and
asks it through ``urllib``, as any client in another process would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from helios_pipeline.api.access import JsonlAccessLog
from helios_pipeline.api.app import ROUTES, ApiConfig, create_app
from helios_pipeline.api.tokens import Scope, TokenStore
from helios_pipeline.batch.ingest import Stores, ingest_range
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.query.engine import MarketDataQuery
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.current_candles import store_current_candles
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline_tests.conftest import RedisServer, free_port

DAY = date(2024, 5, 2)
PRICE = Decimal("61001.25")
SPAN = "start=2024-05-02T00:00Z&end=2024-05-02T03:00Z&timeframe=1h"


@dataclass(frozen=True)
class Root:
    """The module's data root and its Redis database."""

    path: Path
    redis_url: str


@dataclass(frozen=True)
class Answer:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: Any


class Api:
    """A read-API server in a thread of this process, and a client for it."""

    def __init__(self, root: Root, log: Path, config: ApiConfig) -> None:
        self.tokens = TokenStore(log.parent / "api_tokens.sqlite")  # this test's own
        self.query = MarketDataQuery(root.path, redis_url=root.redis_url,
                                     start_date="2024-05-01", cache_ttl_s=0)
        self.log = log
        app = create_app(self.query, self.tokens, JsonlAccessLog(log), config)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the API server did not start within 20 s"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.query.close()
        self.tokens.close()

    def token(self, name: str, symbols: str = "*", kinds: str = "price,ohlcv,quality",
              tiers: str = "*", rate: int = 1000, expires: datetime | None = None) -> str:
        return self.tokens.create(name, Scope.parse(symbols, kinds, tiers), rate, expires)

    def get(self, path: str, token: str | None = None, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                         headers=sent, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http only
                return Answer(response.status, dict(response.headers),
                              json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), json.loads(error.read()))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, sim_exchange: SimExchangeServer,
         redis_server: RedisServer) -> Root:
    path = tmp_path_factory.mktemp("api") / "data"

    async def ingest() -> None:
        async with ExchangeClient("binance", base_url=sim_exchange.base_url) as client:
            stores = Stores(CandleStore(path), MetadataStore(path / "metadata.sqlite"),
                            QuarantineStore(path))
            await ingest_range(client, stores, "BTC/USDT", [DAY])

    asyncio.run(ingest())
    url = redis_server.fresh_url()
    hot = HotStore(url, exchange="binance")
    now = datetime_to_ms(datetime.now(UTC))  # the hot tier trims by the wall clock
    hot.append([Tick("binance", "BTC/USDT", "ticker", now - 500, now * 1000, PRICE,
                     Decimal("12"), PRICE - 1, PRICE + 1, event_id=1, seq=now * 1000)])
    hot.close()
    return Root(path, url)


@contextmanager
def serve(root: Root, tmp_path: Path, config: ApiConfig) -> Iterator[Api]:
    api = Api(root, tmp_path / "access.jsonl", config)
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def api(root: Root, tmp_path: Path) -> Iterator[Api]:
    with serve(root, tmp_path, ApiConfig()) as api:
        yield api


def test_allowed_requests_get_exact_prices_and_candles(api: Api) -> None:
    token = api.token("dashboard", symbols="BTC/USDT")
    price = api.get("/v1/price/BTC-USDT", token)
    assert price.status == 200
    assert price.body == {"symbol": "BTC/USDT", "exchange": "binance", "price": "61001.25",
                          "tier": "hot"}
    candles = api.get(f"/v1/ohlcv/BTCUSDT?{SPAN}", token)
    assert candles.status == 200
    expected = api.query.ohlcv("BTC/USDT", "1h", "2024-05-02T00:00Z", "2024-05-02T03:00Z")
    assert [c["time"] for c in candles.body["candles"]] == [
        t.isoformat() for t in expected.index]
    for row, (_, want) in zip(candles.body["candles"], expected.iterrows(), strict=True):
        for field in ("open", "high", "low", "close", "volume"):  # exact decimal strings
            assert isinstance(row[field], str)
            assert Decimal(row[field]) == want[field]
        assert row["tier"] == "warm"
    last = api.get("/v1/ohlcv/btc-usdt?timeframe=1m&end=2024-05-03T00:00Z&limit=5", token)
    assert [c["time"][11:16] for c in last.body["candles"]] == [
        "23:55", "23:56", "23:57", "23:58", "23:59"]
    schemas = api.get("/openapi.json").body["components"]["schemas"]
    OAS31Validator(schemas["Price"]).validate(price.body)
    OAS31Validator(schemas["Candles"]).validate(candles.body)
    assert [(r["token"], r["route"], r["symbol"], r["status"]) for r in api.records()] == [
        ("dashboard", "/v1/price/BTC-USDT", "BTC/USDT", 200),
        ("dashboard", "/v1/ohlcv/BTCUSDT", "BTC/USDT", 200),
        ("dashboard", "/v1/ohlcv/btc-usdt", "BTC/USDT", 200),
        (None, "/openapi.json", None, 200)]
    assert all(r["ms"] >= 0 and r["method"] == "GET" for r in api.records())


def test_out_of_scope_symbol_kind_and_tier_are_forbidden(api: Api) -> None:
    eth = api.token("eth-only", symbols="ETH/USDT")
    prices = api.token("prices-only", kinds="price")
    live = api.token("live-only", tiers="hot")
    files = api.token("files-only", tiers="warm,archive")
    symbol = api.get("/v1/price/BTC-USDT", eth)
    kind = api.get(f"/v1/ohlcv/BTC-USDT?{SPAN}", prices)
    tier = api.get(f"/v1/ohlcv/BTC-USDT?{SPAN}", live)
    assert (symbol.status, kind.status, tier.status) == (403, 403, 403)
    assert "may not read BTC/USDT (its symbols: ETH/USDT)" in symbol.body["error"]
    assert "may not read ohlcv data (its kinds: price)" in kind.body["error"]
    assert "may not read the warm tier (its tiers: hot)" in tier.body["error"]
    assert api.get("/v1/price/BTC-USDT", files).status == 403  # the price is hot-tier data
    assert api.get(f"/v1/ohlcv/BTC-USDT?{SPAN}", files).status == 200
    assert api.get("/v1/price/BTC-USDT", live).status == 200
    assert [(r["token"], r["status"]) for r in api.records()] == [
        ("eth-only", 403), ("prices-only", 403), ("live-only", 403), ("files-only", 403),
        ("files-only", 200), ("live-only", 200)]


def test_missing_malformed_unknown_expired_and_revoked_tokens_are_refused(api: Api) -> None:
    expired = api.token("old", expires=datetime.now(UTC) - timedelta(seconds=1))
    revoked = api.token("gone")
    elsewhere = TokenStore(api.tokens.path)  # as `helios tokens revoke` does, in its process
    elsewhere.revoke("gone")
    elsewhere.close()
    answers = {
        "missing": api.get("/v1/price/BTC-USDT"),
        "scheme": api.get("/v1/price/BTC-USDT", headers={"Authorization": "Token abc"}),
        "empty": api.get("/v1/price/BTC-USDT", headers={"Authorization": "Bearer "}),
        "spaces": api.get("/v1/price/BTC-USDT", headers={"Authorization": "Bearer a b"}),
        "unknown": api.get("/v1/price/BTC-USDT", "hel_not-a-token-anyone-issued"),
        "expired": api.get("/v1/price/BTC-USDT", expired),
        "revoked": api.get("/v1/price/BTC-USDT", revoked),
    }
    assert {name: a.status for name, a in answers.items()} == dict.fromkeys(answers, 401)
    assert all(a.headers["www-authenticate"].startswith("Bearer") for a in answers.values())
    assert "No token" in answers["missing"].body["error"]
    assert "Malformed" in answers["scheme"].body["error"]
    assert "Malformed" in answers["spaces"].body["error"]
    assert "Unknown token" in answers["unknown"].body["error"]
    assert "'old' expired at" in answers["expired"].body["error"]
    assert "'gone' was revoked" in answers["revoked"].body["error"]
    records = api.records()
    assert [r["status"] for r in records] == [401] * 7
    assert [r["token"] for r in records] == [None] * 7  # refused before any token was known
    assert all(r["symbol"] == "BTC/USDT" for r in records)


def test_oversized_urls_and_bodies_are_refused(api: Api) -> None:
    token = api.token("big")
    long_url = api.get(f"/v1/ohlcv/BTC-USDT?{SPAN}&pad={'x' * 3000}", token)
    body = api.get("/v1/price/BTC-USDT", token, body=b"x" * 5000)
    assert (long_url.status, body.status) == (413, 413)
    assert "accepts up to 2048" in long_url.body["error"]
    assert "accepts up to 1024" in body.body["error"]
    assert [(r["route"], r["status"]) for r in api.records()] == [
        ("/v1/ohlcv/BTC-USDT", 413), ("/v1/price/BTC-USDT", 413)]


def test_bad_arguments_are_400_with_the_query_layers_message(api: Api) -> None:
    token = api.token("args", kinds="price,ohlcv,quality,indicators")
    cases = {
        "/v1/ohlcv/BTC-USDT?timeframe=7m&limit=3": "7m",
        "/v1/ohlcv/BTC-USDT?limit=0": "limit='0'",
        "/v1/ohlcv/BTC-USDT?start=2024-05-03T00:00Z&end=2024-05-02T00:00Z": "start",
        "/v1/ohlcv/BTC-USDT?start=yesterday": "yesterday",
        "/v1/ohlcv/DOGE-USDT?limit=3": "no data for it",
        "/v1/price/B@D": "B@D",
        "/v1/quality/2024-13-01": "YYYY-MM-DD",
    }
    for path, words in cases.items():
        answer = api.get(path, token)
        assert answer.status == 400, (path, answer.body)
        assert words in answer.body["error"], (path, answer.body)
    unauthenticated = api.get("/v1/ohlcv/B@D?limit=0")  # the token is checked first
    assert unauthenticated.status == 401
    records = api.records()
    assert [r["status"] for r in records] == [400] * len(cases) + [401]
    assert [r["symbol"] for r in records][-3:] == ["B@D", None, "B@D"]  # as asked


def test_quality_status_and_the_indicator_seam(api: Api) -> None:
    token = api.token("quality", kinds="quality,indicators")
    day = api.get(f"/v1/quality/{DAY}", token)
    assert day.status == 200
    assert day.body["day"] == "2024-05-02"
    assert day.body["status"] in ("ok", "warn", "fail")
    (btc,) = day.body["symbols"]
    assert (btc["symbol"], btc["rows"], btc["expected_rows"]) == ("BTC/USDT", 1440, 1440)
    assert api.get("/v1/quality/2024-06-01", token).status == 404
    assert api.get("/v1/quality/2024-05-02?symbol=ETH-USDT", token).status == 404
    indicators = api.get("/v1/indicators/BTC-USDT?name=rsi", token)
    assert indicators.status == 501
    assert "not served yet" in indicators.body["error"]


@pytest.fixture
def limited(root: Root, tmp_path: Path) -> Iterator[Api]:
    with serve(root, tmp_path, ApiConfig(rate_window_s=1.0)) as api:
        yield api


def test_over_the_rate_limit_is_429_then_allowed_after_the_window(limited: Api) -> None:
    token = limited.token("bot", rate=2)
    other = limited.token("other", rate=2)
    first = [limited.get("/v1/price/BTC-USDT", token).status for _ in range(2)]
    refused = limited.get("/v1/price/BTC-USDT", token)
    assert first == [200, 200]
    assert refused.status == 429
    assert refused.headers["retry-after"] == "1"
    assert "over its rate of 2 requests per 1 s" in refused.body["error"]
    assert limited.get("/v1/price/BTC-USDT", other).status == 200  # limits are per token
    time.sleep(float(refused.headers["retry-after"]) + 0.1)
    assert limited.get("/v1/price/BTC-USDT", token).status == 200
    assert [(r["token"], r["status"]) for r in limited.records()] == [
        ("bot", 200), ("bot", 200), ("bot", 429), ("other", 200), ("bot", 200)]


@pytest.fixture
def hasty(root: Root, tmp_path: Path) -> Iterator[Api]:
    with serve(root, tmp_path, ApiConfig(query_timeout_s=1e-6)) as api:
        yield api


def test_a_query_past_the_deadline_is_504(hasty: Api) -> None:
    token = hasty.token("slow")
    answer = hasty.get(f"/v1/ohlcv/BTC-USDT?{SPAN}", token)
    assert answer.status == 504
    assert "longer than 1e-06 s" in answer.body["error"]
    assert [(r["token"], r["status"]) for r in hasty.records()] == [("slow", 504)]


def test_the_openapi_description_is_valid_and_covers_every_route(api: Api) -> None:
    document = api.get("/openapi.json").body
    validate(document)  # raises on an invalid OpenAPI 3.1 document
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {path for path, _ in ROUTES}
    for path, item in document["paths"].items():
        if path != "/openapi.json":
            assert {"401", "403", "429"} <= set(item["get"]["responses"]), path


def test_a_hot_tier_that_is_down_is_503_and_unknown_endpoints_are_json(
        root: Root, tmp_path: Path) -> None:
    down = Root(root.path, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with serve(down, tmp_path, ApiConfig()) as api:
        token = api.token("outage")
        price = api.get("/v1/price/BTC-USDT", token)
        assert price.status == 503
        assert "cannot be reached" in price.body["error"]
        assert api.get(f"/v1/ohlcv/BTC-USDT?{SPAN}", token).status == 200  # files still answer
        missing = api.get("/v2/everything", token)
        assert missing.status == 404
        assert "see /openapi.json" in missing.body["error"]
        assert [(r["route"], r["status"]) for r in api.records()] == [
            ("/v1/price/BTC-USDT", 503), ("/v1/ohlcv/BTC-USDT", 200), ("/v2/everything", 404)]


def test_live_minutes_need_the_hot_tier_even_from_their_hourly_flush(api: Api) -> None:
    now = datetime_to_ms(datetime.now(UTC))
    minute = now - now % 60_000
    price = Decimal("61000.5")
    store_current_candles(api.query.data_dir, "BTC/USDT", [
        LiveCandle("BTC/USDT", minute - m * 60_000, price, price + 1, price - 1, price,
                   Decimal("2.5"), 7, 0, 0, 1, False, 0) for m in range(10, 20)], now)
    files = api.token("files-only", tiers="warm,archive")
    live = api.token("live", tiers="hot")
    refused = api.get("/v1/ohlcv/BTC-USDT?limit=3", files)
    assert refused.status == 403
    assert "may not read the hot tier" in refused.body["error"]
    allowed = api.get("/v1/ohlcv/BTC-USDT?limit=3", live)
    assert allowed.status == 200
    assert [c["tier"] for c in allowed.body["candles"]] == ["current"] * 3
    assert [c["close"] for c in allowed.body["candles"]] == ["61000.5"] * 3
