"""Every bad input is answered: exit code 2, one line on stderr naming it, no traceback.

Each case runs the real ``helios`` command in a subprocess with a bad ``HELIOS_*`` variable or a
bad flag. The cases run four at a time in one module fixture (each is a fresh interpreter); the
parametrised tests then check one case each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from helios_pipeline_tests.conftest import REPO_ROOT


@dataclass(frozen=True)
class Case:
    """One bad input: the command, the environment it adds, and what the line must name."""

    id: str
    args: tuple[str, ...]
    names: str
    env: dict[str, str] = field(default_factory=dict)


def env_case(var: str, value: str, names: str | None = None,
             args: tuple[str, ...] = ("audit",)) -> Case:
    return Case(f"{var}={value}", args, names or var, {var: value})


YESTERDAY_RANGE = ("--start", "2024-01-02", "--end", "2024-01-01")
CASES = [
    env_case("HELIOS_REQUEST_TIMEOUT_S", "inf"),
    env_case("HELIOS_REQUEST_TIMEOUT_S", "nan"),
    env_case("HELIOS_REQUEST_TIMEOUT_S", "-1"),
    env_case("HELIOS_REQUEST_TIMEOUT_S", "1e400"),
    env_case("HELIOS_REQUEST_TIMEOUT_S", "ten"),
    env_case("HELIOS_STREAM_STALL_TIMEOUT_S", "0"),
    env_case("HELIOS_START_DATE", "garbage"),
    env_case("HELIOS_START_DATE", "2024-02-30"),
    env_case("HELIOS_TICKER_START_DATE", "20241101"),
    env_case("HELIOS_MAX_IN_FLIGHT", "0"),
    env_case("HELIOS_MAX_IN_FLIGHT", "2.5"),
    env_case("HELIOS_STREAM_QUEUE_SIZE", "-5"),
    env_case("HELIOS_STREAM_SHARDS", "0"),
    env_case("HELIOS_REDIS_URL", "localhost:6379"),
    env_case("HELIOS_REDIS_URL", "http://127.0.0.1:6379/0"),
    env_case("HELIOS_REDIS_URL", "redis://:pw@:0/0"),
    env_case("HELIOS_EXCHANGE_URL", "ftp://127.0.0.1:8080"),
    env_case("HELIOS_EXCHANGE_URL", "not a url"),
    env_case("HELIOS_REFERENCE_EXCHANGE_URL", "127.0.0.1:8081"),
    env_case("HELIOS_ALERT_WEBHOOK_URL", "hooks.example.com/abc"),
    env_case("HELIOS_EXCHANGE", "../../etc"),
    env_case("HELIOS_EXCHANGE", "Binance"),
    env_case("HELIOS_REFERENCE_EXCHANGE", "okx/../x"),
    env_case("HELIOS_STORAGE_FORMAT", "xml"),
    env_case("HELIOS_SYMBOLS", ",,"),
    env_case("HELIOS_SYMBOLS", "BTC/USDT,NOTASYMBOL"),
    env_case("HELIOS_STREAM_KINDS", "orders"),
    env_case("HELIOS_FRESHNESS_DEADLINE_HOUR", "24"),
    env_case("HELIOS_HOT_RETENTION_MINUTES", "10"),
    env_case("HELIOS_KEEP_VERSIONS", "-1"),
    env_case("HELIOS_BATCH_WEIGHT_SHARE", "0"),
    env_case("HELIOS_BATCH_WEIGHT_SHARE", "0.9"),
    env_case("HELIOS_BATCH_WEIGHT_SHARE", "nan"),
    env_case("HELIOS_VALIDATION", "no_such_rule=1"),
    env_case("HELIOS_MASTER_KEY", "too-short", args=("secrets", "list")),
    env_case("HELIOS_MASTER_KEY_FILE", "/nonexistent/master.key", args=("secrets", "list")),
    Case("stream --status-every 0", ("stream", "--status-every", "0"), "--status-every"),
    Case("stream --status-every -2", ("stream", "--status-every", "-2"), "--status-every"),
    Case("stream --duration -1", ("stream", "--duration", "-1"), "--duration"),
    Case("stream --duration nan", ("stream", "--duration", "nan"), "--duration"),
    Case("stream --duration inf", ("stream", "--duration", "inf"), "--duration"),
    Case("stream --top 0", ("stream", "--top", "0"), "--top"),
    Case("stream --shards 0", ("stream", "--shards", "0", "--duration", "1"), "--shards"),
    Case("stream --queue-size 0", ("stream", "--queue-size", "0", "--duration", "1"),
         "queue_size"),
    Case("stream --kinds orders", ("stream", "--kinds", "orders", "--duration", "1"), "orders"),
    Case("demo --days 0", ("demo", "--days", "0"), "--days"),
    Case("backfill --start garbage",
         ("backfill", "--symbols", "BTC/USDT", "--start", "garbage", "--end", "2024-01-01"),
         "garbage"),
    Case("backfill end before start", ("backfill", "--symbols", "BTC/USDT", *YESTERDAY_RANGE),
         "--end"),
    Case("backfill without --end", ("backfill", "--symbols", "BTC/USDT", "--start",
                                    "2024-01-01"), "--end"),
    Case("backfill --symbols ,", ("backfill", "--symbols", ",", "--start", "2024-01-01",
                                  "--end", "2024-01-01"), "--symbols"),
    Case("history --exchange ../x", ("history", "BTC/USDT", "2024-01-01", "--exchange",
                                     "../x"), "--exchange"),
    Case("history bad day", ("history", "BTC/USDT", "2024-13-01"), "2024-13-01"),
    Case("secrets set bad name", ("secrets", "set", "../binance"), "../binance"),
    Case("audit --since garbage", ("audit", "--since", "yesterdayish"), "--since"),
    Case("unknown command", ("launch",), "launch"),
]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("bad-input")
    base = {k: v for k, v in os.environ.items() if not k.startswith("HELIOS_")}
    base.update({"HELIOS_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root)})

    def run(case: Case) -> tuple[str, Outcome]:
        done = subprocess.run([sys.executable, "-m", "helios_pipeline.cli", *case.args],
                              cwd=REPO_ROOT, env={**base, **case.env}, capture_output=True,
                              text=True, timeout=120, check=False)
        return case.id, Outcome(done.returncode, done.stdout, done.stderr)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, CASES))


def test_there_are_at_least_thirty_cases() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(outcomes: dict[str, Outcome], case: Case) -> None:
    outcome = outcomes[case.id]
    lines = outcome.stderr.strip().splitlines()
    assert outcome.code == 2, outcome
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: ")
    assert case.names in lines[0]
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.stdout.strip() == ""


def test_a_bad_url_never_prints_its_password(outcomes: dict[str, Outcome]) -> None:
    line = outcomes["HELIOS_REDIS_URL=redis://:pw@:0/0"].stderr
    assert ":pw@" not in line
    assert "redis://:***@" in line
