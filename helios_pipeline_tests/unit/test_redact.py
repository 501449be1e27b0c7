"""The sanitiser: every credential form is masked, ordinary market-data text is left alone."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_pipeline.security.console import RedactingConsole
from helios_pipeline.security.logs import RedactingFilter, RedactingStream, install_redaction
from helios_pipeline.security.redact import (
    MASK,
    forget_secrets,
    redact,
    redact_mapping,
    register_secret,
)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connecting to redis://:hunter2pw@127.0.0.1:6379/0", "hunter2pw"),
        ("redis://default:p%40ssw0rd@redis.internal:6380/1", "p%40ssw0rd"),
        ("rediss://user:Zx9-long.pw@host/0", "Zx9-long.pw"),
        ("GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=9f86d081",
         "9f86d081"),
        ("https://x/api?timestamp=1&apiKey=vmPUZE6mv9SD5VNH", "vmPUZE6mv9SD5VNH"),
        ("headers={'X-MBX-APIKEY': 'vmPUZE6mv9SD5VNH'}", "vmPUZE6mv9SD5VNH"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
        ("config secret=NhqPtmdSJYdKjVHj apiKey: abcDEF123", "NhqPtmdSJYdKjVHj"),
        ("{'apiKey': 'abcDEF123', 'secret': 'xyz'}", "abcDEF123"),
        ("password=correct-horse", "correct-horse"),
        ("webhook https://hooks/x?token=T0K3N", "T0K3N"),
    ],
)
def test_credential_forms_are_masked(text: str, secret: str) -> None:
    clean = redact(text)
    assert secret not in clean
    assert MASK in clean


@pytest.mark.parametrize(
    "text",
    [
        "BTC/USDT 2024-04-01..2024-04-02 (2 days) ok",
        "redis://127.0.0.1:6379/0",
        "https://user@example.com/path",
        "max_in_flight=50 tokens=3.5 key_id 1a2b",
        "Quarantined ETH/USDT 2024-01-02 13:00: ohlc_consistency",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_and_its_url_encoding_are_masked() -> None:
    register_secret("pl@nted/secret+value")
    text = "a pl@nted/secret+value b pl%40nted%2Fsecret%2Bvalue c pl%40nted%2Fsecret%2Bvalue"
    assert redact(text) == f"a {MASK} b {MASK} c {MASK}"


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


@given(st.text(min_size=6, max_size=40).filter(lambda s: s.strip() == s and "\n" not in s))
def test_any_registered_value_never_survives(secret: str) -> None:
    forget_secrets()
    register_secret(secret)
    assert secret not in redact(f"before {secret} after {secret}")


def test_mapping_masks_credential_fields_and_nested_text() -> None:
    payload = {"apiKey": "k3y-value", "webhook_secret": "s", "n": 3,
               "nested": {"url": "redis://:pw123456@h/0", "list": ["token=abcdef"]}}
    assert redact_mapping(payload) == {
        "apiKey": MASK, "webhook_secret": MASK, "n": 3,
        "nested": {"url": f"redis://:{MASK}@h/0", "list": [f"token={MASK}"]},
    }


def test_log_records_from_any_logger_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    register_secret("PLANTED-log-secret")
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("url %s key %s", "redis://:pw999999@h/0",
                                               "PLANTED-log-secret")
        try:
            raise RuntimeError("failed with PLANTED-log-secret")
        except RuntimeError:
            logging.getLogger("helios.x").exception("boom")
    text = caplog.text
    assert "PLANTED-log-secret" not in text
    assert "pw999999" not in text
    assert "RuntimeError" in text


def test_filter_masks_a_record_made_outside_the_factory() -> None:
    record = logging.makeLogRecord({"msg": "secret=%s", "args": ("S3CR3T-VALUE",)})
    RedactingFilter().filter(record)
    assert record.getMessage() == f"secret={MASK}"


def test_console_and_stream_mask_before_output() -> None:
    register_secret("console-planted-9")
    out = io.StringIO()
    RedactingConsole(file=out, width=200).print("[bold]into[/] redis://:console-planted-9@h/0")
    stream = RedactingStream(io.StringIO())
    stream.write("printed console-planted-9\n")
    assert "console-planted-9" not in out.getvalue()
    assert "console-planted-9" not in stream.wrapped.getvalue()


def test_exchange_errors_mask_signed_urls_wherever_they_are_shown() -> None:
    from helios_pipeline.exchanges.errors import ExchangeError

    error = ExchangeError("binance GET https://x/api/v3/order?timestamp=1&signature=abcdef0123")
    assert str(error) == f"binance GET https://x/api/v3/order?timestamp=1&signature={MASK}"
