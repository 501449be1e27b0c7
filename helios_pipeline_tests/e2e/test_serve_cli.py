"""``helios tokens`` and ``helios serve`` as a user runs them; the server in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helios_pipeline.api.tokens import Scope, TokenStore, tokens_path
from helios_pipeline.cli.main import main
from helios_pipeline.domain.ticks import Tick
from helios_pipeline.domain.timeframe import datetime_to_ms
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.storage.hot.store import HotStore
from helios_pipeline_tests.conftest import free_port

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def helios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Run:
    """``helios ARGS...`` in this process against ``tmp_path/data``: (exit code, output)."""
    monkeypatch.setenv("HELIOS_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str) -> tuple[int, str]:
        try:
            code = main(list(args))
        except SystemExit as done:  # argparse refuses bad arguments with exit code 2
            code = int(done.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def get(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - http only
        url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http only
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tokens_are_created_listed_and_revoked_and_the_secret_is_shown_once(
        tmp_path: Path, helios: Run) -> None:
    code, out = helios("tokens", "create", "dash", "--symbols", "BTC/USDT,ETHUSDT",
                       "--kinds", "price,ohlcv", "--rate", "30", "--expires", "2027-01-01")
    assert code == 0, out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("hel_")
    assert len(secret) > 40
    _, listed = helios("tokens", "list")
    assert "dash" in listed
    assert "BTC/USDT,ETH/USDT" in listed
    assert "2027-01-01" in listed
    assert "active" in listed
    assert secret not in listed
    assert secret.encode() not in (tmp_path / "data" / "api_tokens.sqlite").read_bytes()
    assert helios("tokens", "revoke", "dash")[0] == 0
    assert "revoked" in helios("tokens", "list")[1]
    for bad, words in (
            (["create", "dash"], "exists already"),
            (["create", "x", "--kinds", "price,trades"], "Unknown kinds trades"),
            (["create", "x", "--tiers", "cold"], "Unknown tiers cold"),
            (["create", "x", "--symbols", "B@D"], "B@D"),
            (["create", "x", "--rate", "0"], "positive number"),
            (["create", "x", "--expires", "soon"], "not a day or time"),
            (["revoke", "nobody"], "No token named 'nobody'")):
        code, out = helios("tokens", *bad)
        assert code == 2, bad
        assert words in out, bad
        assert "Traceback" not in out


def test_bad_serve_options_are_refused(helios: Run) -> None:
    for bad in (["--port", "0"], ["--port", "http"], ["--query-timeout", "inf"],
                ["--query-timeout", "nan"], ["--query-timeout", "0"]):
        code, out = helios("serve", *bad)
        assert code == 2, bad
        assert "Traceback" not in out


def test_helios_serve_answers_and_records_each_request(tmp_path: Path, redis_url: str) -> None:
    """The real thing: ``helios serve`` in its own process, asked over HTTP."""
    root = tmp_path / "data"
    hot = HotStore(redis_url, exchange="binance")
    now = datetime_to_ms(datetime.now(UTC))
    price = Decimal("3001.125")
    hot.append([Tick("binance", "ETH/USDT", "ticker", now - 500, now * 1000, price,
                     Decimal("5"), price, price, event_id=1, seq=now * 1000)])
    hot.close()
    secret = TokenStore(tokens_path(root)).create("bot", Scope.parse("ETH/USDT", "price"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "helios_pipeline.cli", "serve", "--port", str(port)],
        env={**os.environ, "HELIOS_DATA_DIR": str(root), "HELIOS_REDIS_URL": redis_url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = get(f"{base}/v1/price/ETH-USDT", secret)
                break
            except urllib.error.URLError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "helios serve did not listen within 60 s"
                time.sleep(0.2)
        assert answer == (200, {"symbol": "ETH/USDT", "exchange": "binance",
                                "price": "3001.125", "tier": "hot"})
        assert get(f"{base}/v1/price/BTC-USDT", secret)[0] == 403
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    log = root / "system" / "api_access" / "access.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["token"], r["symbol"], r["status"]) for r in records] == [
        ("bot", "ETH/USDT", 200), ("bot", "BTC/USDT", 403)]
    # ...and in the hash-chained audit trail, which still verifies.
    audit = AuditLog(root / "metadata.sqlite")
    served = [(e.kind, e.subject, e.detail["status"]) for e in audit.entries()
              if e.kind.startswith("api_")]
    assert served == [("api_read", "GET /v1/price/ETH-USDT", 200),
                      ("api_denied", "GET /v1/price/BTC-USDT", 403)]
    assert audit.verify().ok
