"""A crash on two venues is stored and derived; a crash on one is quarantined, unconfirmed.

Two simulated Binance-format venues replay the real 2020-03-12 BTCUSDT day. The ``crash`` fault
drops the low and close of 12:00 to 70% (a 30% one-minute crash, far beyond ``max_jump``): on
both venues it is a real move, on the primary alone a bad print.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from helios_pipeline.batch.confirm import CONFIRMED_MOVE, UNCONFIRMED_BY
from helios_pipeline.batch.derived import ConsistencyReport, compare_range_with_exchange
from helios_pipeline.batch.ingest import DayResult, Stores, ingest_range
from helios_pipeline.batch.lost_minutes import QUARANTINED_MINUTE
from helios_pipeline.batch.partition_checks import consistency_outcome
from helios_pipeline.batch.reexamine import reexamine_day
from helios_pipeline.batch.release import Released
from helios_pipeline.cli.main import main
from helios_pipeline.domain.timeframe import Timeframe, datetime_to_ms
from helios_pipeline.exchanges.client import ExchangeClient
from helios_pipeline.quality.daily import Venue, assess_day, held_moves
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.decisions import DecisionStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.quarantine import QuarantineStore
from helios_pipeline.validation.rules import MOVE_NOT_CHECKED, MOVE_UNCONFIRMED, Rule
from helios_pipeline_tests.conftest import KLINES_DIR

DAY = date(2020, 3, 12)
CRASH_AT = datetime(2020, 3, 12, 12, 0, tzinfo=UTC)
CRASH = f"crash:symbol=BTCUSDT,at={DAY}T12:00,factor=0.7"
SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def venues() -> Iterator[dict[str, SimExchangeServer]]:
    with SimExchangeServer(port=0, data_dir=KLINES_DIR, faults=CRASH) as primary, \
            SimExchangeServer(port=0, data_dir=KLINES_DIR, faults=CRASH) as crashed, \
            SimExchangeServer(port=0, data_dir=KLINES_DIR) as calm:
        yield {"primary": primary, "crashed": crashed, "calm": calm}


def tf_floor(timeframe: Timeframe) -> datetime:
    """Open time of the ``timeframe`` candle holding the crash minute."""
    return datetime.fromtimestamp(timeframe.floor(datetime_to_ms(CRASH_AT)) / 1000, UTC)


def stores(root: Path) -> Stores:
    return Stores(CandleStore(root), MetadataStore(root / "metadata.sqlite"),
                  QuarantineStore(root))


def ingest(primary: str, reference: str | None, root: Path) -> DayResult:
    async def run() -> DayResult:
        async with ExchangeClient("binance", base_url=primary) as client:
            if reference is None:
                return (await ingest_range(client, stores(root), SYMBOL, [DAY]))[0]
            async with ExchangeClient("binance", base_url=reference,
                                      qualifier="refvenue") as ref:
                return (await ingest_range(client, stores(root), SYMBOL, [DAY],
                                           reference=ref))[0]
    return asyncio.run(run())


def test_a_crash_on_both_venues_is_stored_flagged_and_in_the_derived_candles(
    venues: dict[str, SimExchangeServer], tmp_path: Path
) -> None:
    result = ingest(venues["primary"].base_url, venues["crashed"].base_url, tmp_path)

    assert result.minute.report.quarantined == 0
    assert QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, DAY) == []
    stored = {c.timestamp: c for c in CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, DAY)}
    assert len(stored) == 1440
    crash = stored[CRASH_AT]
    assert CONFIRMED_MOVE in crash.anomaly_flags
    assert crash.is_validated
    before = stored[datetime(2020, 3, 12, 11, 59, tzinfo=UTC)]
    assert crash.low < before.close * Decimal("0.75")  # the 30% crash is in the history
    for tf in (Timeframe.H1, Timeframe.D1):  # ... and in the derived candles that contain it
        derived = CandleStore(tmp_path).load(SYMBOL, tf, DAY)
        [bucket] = [c for c in derived if c.timestamp == tf_floor(tf)]
        assert bucket.low == crash.low, tf
    [decision] = DecisionStore(tmp_path / "metadata.sqlite").decisions(SYMBOL)
    assert (decision.decision, decision.reference, decision.open_ms) == (
        "confirmed", "refvenue", datetime_to_ms(CRASH_AT))
    assert Rule.PRICE_JUMP in decision.rules
    lows = [Decimal(c["low"]) for c in decision.evidence["candles"]]
    assert len(lows) == 3  # 11:59, 12:00 and 12:01 on the reference venue
    assert min(lows) == crash.low  # the reference printed the same low


def test_a_crash_on_one_venue_is_quarantined_unconfirmed_by_the_reference(
    venues: dict[str, SimExchangeServer], tmp_path: Path
) -> None:
    result = ingest(venues["primary"].base_url, venues["calm"].base_url, tmp_path)

    assert result.minute.report.quarantined == 1
    [record] = QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, DAY)
    assert record.timestamp_ms == datetime_to_ms(CRASH_AT)
    assert Rule.PRICE_JUMP in record.rules
    assert record.values[UNCONFIRMED_BY] == "refvenue"
    stored = CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, DAY)
    assert CRASH_AT not in {c.timestamp for c in stored}
    [decision] = DecisionStore(tmp_path / "metadata.sqlite").decisions(SYMBOL)
    assert decision.decision == "unconfirmed"
    assessed = assess_day(Venue("binance", tmp_path), [SYMBOL], DAY)
    [quality] = assessed.summary.symbols
    assert quality.quarantine.by_rule[MOVE_UNCONFIRMED] == 1
    [held] = held_moves(Venue("binance", tmp_path), SYMBOL, DAY)
    assert (held.timestamp_ms, held.unconfirmed_by) == (datetime_to_ms(CRASH_AT), "refvenue")
    html = assessed.path.read_text()
    assert "Price moves held in quarantine (1)" in html
    assert "not shown by refvenue" in html
    assert f"helios quarantine release {SYMBOL} {CRASH_AT:%Y-%m-%dT%H:%M}" in html

    # The derived 1h and 1d candles lost that minute: flagged, and the consistency check against
    # the exchange's own candles reports the difference, naming the lost minute.
    for tf in (Timeframe.H1, Timeframe.D1):
        [bucket] = [c for c in CandleStore(tmp_path).load(SYMBOL, tf, DAY)
                    if c.timestamp == tf_floor(tf)]
        assert QUARANTINED_MINUTE in bucket.anomaly_flags, tf
    derived = {DAY: {tf: item.table for tf, item in result.derived.items()}}

    async def compare() -> dict[tuple[date, Timeframe], ConsistencyReport]:
        async with ExchangeClient("binance", base_url=venues["primary"].base_url) as client:
            return await compare_range_with_exchange(client, SYMBOL, derived,
                                                     [Timeframe.H1, Timeframe.D1])

    reports = {tf: report for (_, tf), report in asyncio.run(compare()).items()}
    for tf, report in reports.items():
        assert report.lost_minutes == (datetime_to_ms(tf_floor(tf)),), tf
        # Only that bucket differs: the exchange's low holds the crash; our open (for 1h, whose
        # first minute it was) and volume lack the quarantined minute.
        assert {m.open_ms for m in report.mismatches} == set(report.lost_minutes), tf
        assert "low" in {m.field for m in report.mismatches}, tf
    outcome = consistency_outcome(reports)
    assert not outcome.passed
    assert outcome.metadata["lost_to_quarantine"] == 2  # one bucket in 1h, one in 1d
    shown = str(outcome.metadata["first_mismatches"])
    assert f"1h {tf_floor(Timeframe.H1):%H:%M} low" in shown
    assert "1d 00:00 low" in shown
    assert "(lost a quarantined minute)" in shown


def test_without_a_reference_venue_the_seed_rule_quarantines(
    venues: dict[str, SimExchangeServer], tmp_path: Path
) -> None:
    result = ingest(venues["primary"].base_url, None, tmp_path)

    assert result.minute.report.quarantined == 1
    [record] = QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, DAY)
    assert UNCONFIRMED_BY not in record.values
    assert DecisionStore(tmp_path / "metadata.sqlite").decisions(SYMBOL) == []

    # The quality report lists it apart: a price move nobody confirmed.
    report = assess_day(Venue("binance", tmp_path), [SYMBOL], DAY)
    [quality] = report.summary.symbols
    assert quality.quarantine.by_rule[MOVE_NOT_CHECKED] == 1
    html = report.path.read_text()
    assert MOVE_NOT_CHECKED in html
    assert "Price moves held in quarantine (1)" in html
    assert "no reference venue asked" in html
    assert f"helios quarantine release {SYMBOL} {CRASH_AT:%Y-%m-%dT%H:%M}" in html


def test_helios_quarantine_release_restores_the_crash_and_rebuilds_derived_days(
    venues: dict[str, SimExchangeServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ingest(venues["primary"].base_url, None, tmp_path)  # no reference: quarantined
    monkeypatch.setenv("HELIOS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELIOS_EXCHANGE", "binance")
    catalog = MetadataStore(tmp_path / "metadata.sqlite")
    before = catalog.latest_partition("binance", SYMBOL, Timeframe.M1, DAY)

    code = main(["quarantine", "release", "BTC/USDT", "2020-03-12T12:00",
                 "--reason", "BTC fell 30% on every venue"])

    assert code == 0, capsys.readouterr()
    assert "Released BTC/USDT 2020-03-12 12:00 UTC" in capsys.readouterr().out
    (audited,) = AuditLog(tmp_path / "metadata.sqlite").entries(kind="quarantine_release")
    assert audited.subject == "binance:BTC/USDT 2020-03-12 12:00"
    assert audited.detail["reason"] == "BTC fell 30% on every venue"
    assert QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, DAY) == []
    after = catalog.latest_partition("binance", SYMBOL, Timeframe.M1, DAY)
    assert before is not None
    assert after is not None
    assert after.version == before.version + 1
    assert (after.rows, after.quarantined, after.missing_minutes) == (1440, 0, 0)
    assert after.source.startswith("released by hand: BTC fell 30%")
    stored = {c.timestamp: c for c in CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, DAY)}
    crash = stored[CRASH_AT]
    assert CONFIRMED_MOVE in crash.anomaly_flags
    for tf in (Timeframe.H1, Timeframe.D1):
        [bucket] = [c for c in CandleStore(tmp_path).load(SYMBOL, tf, DAY)
                    if c.timestamp == tf_floor(tf)]
        assert bucket.low == crash.low, tf
    [decision] = DecisionStore(tmp_path / "metadata.sqlite").decisions(SYMBOL)
    assert decision.decision == "released"
    assert decision.evidence["reason"] == "BTC fell 30% on every venue"

    # Releasing it again, or a minute that was never quarantined: one clear line, exit 2.
    assert main(["quarantine", "release", "BTC/USDT", "2020-03-12T12:00"]) == 2
    assert "No quarantined 1m candle of BTC/USDT at 2020-03-12 12:00" in capsys.readouterr().err
    assert main(["quarantine", "release", "BTC/USDT", "2020-03-12 12:00:30"]) == 2
    assert "not a whole minute" in capsys.readouterr().err


def test_a_quarantined_crash_is_restored_when_the_reference_data_lands_later(
    venues: dict[str, SimExchangeServer], tmp_path: Path
) -> None:
    ingest(venues["primary"].base_url, None, tmp_path)  # the reference was not there yet
    catalog = MetadataStore(tmp_path / "metadata.sqlite")

    async def reexamine(url: str) -> list[Released]:
        async with ExchangeClient("binance", base_url=url, qualifier="refvenue") as ref:
            return await reexamine_day(ref, CandleStore(tmp_path), catalog,
                                       QuarantineStore(tmp_path), "binance", SYMBOL, DAY)

    assert asyncio.run(reexamine(venues["calm"].base_url)) == []  # a calm venue confirms nothing
    assert len(QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, DAY)) == 1
    [restored] = asyncio.run(reexamine(venues["crashed"].base_url))

    assert restored.candle.timestamp == CRASH_AT
    assert restored.minute.record.version == 2
    assert QuarantineStore(tmp_path).load_partition(SYMBOL, Timeframe.M1, DAY) == []
    stored = {c.timestamp: c for c in CandleStore(tmp_path).load(SYMBOL, Timeframe.M1, DAY)}
    assert CONFIRMED_MOVE in stored[CRASH_AT].anomaly_flags
    [daily] = CandleStore(tmp_path).load(SYMBOL, Timeframe.D1, DAY)
    assert daily.low == stored[CRASH_AT].low
    [decision] = DecisionStore(tmp_path / "metadata.sqlite").decisions(SYMBOL)
    assert (decision.decision, decision.reference) == ("confirmed", "refvenue")
    assert decision.evidence["reexamined"] is True
    assert asyncio.run(reexamine(venues["crashed"].base_url)) == []  # nothing left to restore
