"""Parts of the read API that need no server: decimal text, the rate window, scopes, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from helios_pipeline.api.limits import RateLimiter, retry_after
from helios_pipeline.api.tokens import AuthError, Scope, TokenError, TokenStore
from helios_pipeline.api.views import decimal_text


@pytest.mark.parametrize(("stored", "text"), [
    ("18865.580000000000000000", "18865.58"), ("0.000000010000000000", "0.00000001"),
    ("1E-8", "0.00000001"), ("100.000", "100"), ("1E+3", "1000"), ("-0.50", "-0.5"),
])
def test_decimals_are_exact_plain_text_without_the_storage_scale(stored: str, text: str) -> None:
    assert decimal_text(Decimal(stored)) == text
    assert Decimal(text) == Decimal(stored)


def test_the_rate_window_slides() -> None:
    now = [100.0]
    limiter = RateLimiter(window_s=60, clock=lambda: now[0])
    assert limiter.admit("a", 2) is None
    now[0] = 110.0
    assert limiter.admit("a", 2) is None
    now[0] = 130.0
    assert limiter.admit("a", 2) == pytest.approx(30.0)  # the first leaves the window at 160
    assert limiter.admit("b", 2) is None  # per key
    now[0] = 160.0
    assert limiter.admit("a", 2) is None  # a refused request did not take a place
    assert limiter.admit("a", 2) == pytest.approx(10.0)  # the one of 110 is in until 170
    assert retry_after(0.01) == "1"
    assert retry_after(30.2) == "31"


def test_scopes_are_parsed_and_checked() -> None:
    scope = Scope.parse("btcusdt, ETH/USDT", "price,OHLCV", "warm")
    assert scope.symbols == {"BTC/USDT", "ETH/USDT"}
    assert scope.kinds == {"price", "ohlcv"}
    assert scope.allows_tier("warm")
    assert not scope.allows_tier("hot")
    assert Scope.parse("*", "quality").allows_symbol("ANY/THING")
    with pytest.raises(TokenError, match="Unknown kinds trades"):
        Scope.parse("*", "price,trades")
    with pytest.raises(TokenError, match="No symbols given"):
        Scope.parse(" , ", "price")


def test_tokens_are_checked_by_hash_and_refused_when_expired_or_revoked(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "api_tokens.sqlite")
    soon = datetime(2030, 1, 1, tzinfo=UTC)
    secret = store.create("bot", Scope.parse("*", "price"), 10, soon)
    assert store.authenticate(secret, soon - timedelta(seconds=1)).name == "bot"
    with pytest.raises(AuthError, match="'bot' expired at 2030-01-01 00:00"):
        store.authenticate(secret, soon)
    with pytest.raises(AuthError, match="Unknown token"):
        store.authenticate(secret + "x")
    store.revoke("bot")
    with pytest.raises(AuthError, match="'bot' was revoked"):
        store.authenticate(secret, soon - timedelta(days=1))
    with pytest.raises(TokenError, match="positive"):
        store.create("zero", Scope.parse("*", "price"), 0)
    with pytest.raises(TokenError, match="time zone"):
        store.create("naive", Scope.parse("*", "price"), 1, datetime(2030, 1, 1))  # noqa: DTZ001
    with pytest.raises(TokenError, match="letters, digits"):
        store.create("a b", Scope.parse("*", "price"))
