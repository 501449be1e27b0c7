"""``flat_fill`` on the real Binance listing day: vendor-style fills flagged, quiet minutes not.

BTCUSDT-1m-2017-08-17 holds 369 zero-volume candles, flat at the previous close, each with a
trade count of 0: Binance saying nobody traded that minute. As the exchange sends them they
are real quiet minutes and carry no flag. The same rows without their trade count (the six
ccxt fields, as a data vendor's file has them) can no longer be told from a synthetic fill, so
the flat ones are flagged ``flat_fill``: kept, counted in the quality report, never quarantined.
"""

from __future__ import annotations

import csv
from collections import Counter
from itertools import pairwise

import pandas as pd

from helios_pipeline.domain.columns import ANOMALY_FLAGS, VALIDATION_SCORE
from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.quality.detectors import soft_flag_stats
from helios_pipeline.validation.expectations import candle_expectation_rules
from helios_pipeline.validation.frames import validate_candle_frame
from helios_pipeline.validation.outcome import validate_kline_rows
from helios_pipeline.validation.rules import Rule
from helios_pipeline.validation.schemas import candle_schema_rules
from helios_pipeline_tests.conftest import KLINES_DIR

NOW = 2_000_000_000_000
LISTING_DAY = KLINES_DIR / "BTCUSDT-1m-2017-08-17.csv"


def rows() -> list[list[object]]:
    with LISTING_DAY.open() as handle:
        return [[int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), *r[9:12]]
                for r in csv.reader(handle)]


def zero_volume_flat(data: list[list[object]]) -> int:
    """Rows with volume 0 whose four prices equal the close of the row before (by hand)."""
    return sum(1 for before, row in pairwise(data)
               if float(str(row[5])) == 0 and len({str(before[4]), *map(str, row[1:5])}) == 1)


def test_quiet_minutes_the_exchange_reports_carry_no_flag() -> None:
    data = rows()
    assert sum(1 for r in data if r[8] == 0 and float(str(r[5])) == 0) == 369
    outcome = validate_kline_rows(data, "BTC/USDT", Timeframe.M1, now_ms=NOW)
    assert len(outcome.accepted) == 1200
    assert not any(Rule.FLAT_FILL in c.anomaly_flags for c in outcome.accepted)


def test_the_same_rows_without_trade_counts_are_flagged_kept_and_counted() -> None:
    data = rows()
    vendor = [r[:6] for r in data]
    expected = zero_volume_flat(data)
    assert expected == 369  # every zero-volume minute of the day sits at the previous close

    outcome = validate_kline_rows(vendor, "BTC/USDT", Timeframe.M1, now_ms=NOW)

    assert outcome.quarantined == []  # soft: kept
    flagged = [c for c in outcome.accepted if Rule.FLAT_FILL in c.anomaly_flags]
    assert len(flagged) == expected
    assert all(c.volume == 0 and c.validation_score < 1.0 for c in flagged)
    frame = pd.DataFrame({ANOMALY_FLAGS: [c.anomaly_flags for c in outcome.accepted],
                          VALIDATION_SCORE: [c.validation_score for c in outcome.accepted]})
    stats = soft_flag_stats(frame)  # what the quality report shows per symbol
    assert stats.by_flag[Rule.FLAT_FILL] == expected


def test_every_engine_agrees_on_flat_fill() -> None:
    data = rows()
    frame = pd.DataFrame([r[:6] for r in data],
                         columns=["timestamp", "open", "high", "low", "close", "volume"])
    with_counts = frame.assign(trades=[r[8] for r in data])
    for candles, flats in ((frame, 369), (with_counts, 0)):
        verdicts = validate_candle_frame(candles, Timeframe.M1, now_ms=NOW)
        rules = [h + s for h, s in zip(verdicts["hard_rules"], verdicts["soft_rules"],
                                       strict=True)]
        assert Counter(r for names in rules for r in names)[Rule.FLAT_FILL] == flats
        assert candle_schema_rules(candles, Timeframe.M1, now_ms=NOW) == rules
        assert candle_expectation_rules(candles, Timeframe.M1, now_ms=NOW) == rules
