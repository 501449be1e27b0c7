"""Per-timeframe jump thresholds on real candles: how many real candles each setting flags.

Binance BTCUSDT 1m months and the 2020-03-12 crash day are resampled to every longer timeframe
(open first, high max, low min, close last, volume sum, as ``domain.resample`` builds derived
candles); real Coinbase BTC/USD daily candles around the same crash are judged as the exchange
published them. The seed setting (``max_jump`` 20% at every timeframe) flags real moves at every
timeframe above 1m; the per-timeframe defaults flag none, and a bad print is still refused.
Every number pinned below names the real candles behind it.
"""

from __future__ import annotations

import csv
import lzma
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.validation.expectations import candle_expectation_rules
from helios_pipeline.validation.frames import validate_candle_frame
from helios_pipeline.validation.rules import Rule, ValidationThresholds
from helios_pipeline.validation.scalar import CandleValidator
from helios_pipeline.validation.schemas import candle_schema_rules
from helios_pipeline_tests.conftest import KLINES_DIR, TEST_DATA

NOW = 2_000_000_000_000
SEED = ValidationThresholds(by_timeframe=())  # 20% everywhere: the rule before issue 13
DEFAULTS = ValidationThresholds()
PRICE_RULES = {Rule.PRICE_JUMP, Rule.PRICE_JUMP_AFTER_GAP, Rule.ABSURD_PRICE}
COINBASE_DAILY = TEST_DATA / "coinbase_btcusd" / "Coinbase_BTCUSD_d-2020-02-15_2020-04-15.csv"


def binance_minutes(name: str) -> pd.DataFrame:
    """A Binance kline file as a frame of ms open times and decimal-string prices."""
    path = KLINES_DIR / name
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as handle:  # type: ignore[operator]
        rows = [r[:6] for r in csv.reader(handle)]
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    stamps = frame["timestamp"].astype("int64")
    frame["timestamp"] = np.where(stamps > 10**14, stamps // 1000, stamps)  # 2025+: microseconds
    return frame


def resample(minutes: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """Real 1m candles aggregated into ``timeframe`` buckets."""
    if timeframe is Timeframe.M1:
        return minutes
    frame = minutes.astype(dict.fromkeys(("open", "high", "low", "close", "volume"), float))
    frame["bucket"] = frame["timestamp"] - frame["timestamp"] % timeframe.ms
    return (frame.groupby("bucket")
            .agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                 close=("close", "last"), volume=("volume", "sum"))
            .reset_index().rename(columns={"bucket": "timestamp"}))


def coinbase_daily() -> pd.DataFrame:
    """The Coinbase daily excerpt, oldest first, with ms open times."""
    with COINBASE_DAILY.open() as handle:
        rows = list(csv.DictReader(handle))[::-1]
    return pd.DataFrame({
        "timestamp": [int(datetime.strptime(r["Date"], "%Y-%m-%d").replace(tzinfo=UTC)
                          .timestamp()) * 1000 for r in rows],
        **{k.lower(): [r[k] for r in rows] for k in ("Open", "High", "Low", "Close")},
        "volume": [r["Volume BTC"] for r in rows],
    })


def flagged(frame: pd.DataFrame, timeframe: Timeframe, thresholds: ValidationThresholds
            ) -> list[str]:
    """Open times (UTC) of the candles a price rule flags or refuses."""
    verdicts = validate_candle_frame(frame, timeframe, thresholds, NOW)
    rules = verdicts["hard_rules"] + verdicts["soft_rules"]
    hit = rules.map(lambda names: bool(PRICE_RULES & set(names)))
    return [datetime.fromtimestamp(int(ts) / 1000, UTC).strftime("%Y-%m-%d %H:%M")
            for ts in frame["timestamp"][hit.to_numpy()]]


# (file, timeframe, candles flagged by the seed 20% rule). Every other combination flags none.
SEED_FLAGS = {
    # The May 2019 rally, 5,988 to 7,948 in five daily closes: the highs of May 11-14 (7,344,
    # 7,522, 8,100, 8,366) are 22.7%, 21.1%, 27.1% and 20.1% above the median of the five
    # closes before each.
    ("BTCUSDT-1m-2019-05.csv.xz", Timeframe.D1): [
        "2019-05-11 00:00", "2019-05-12 00:00", "2019-05-13 00:00", "2019-05-14 00:00"],
    # 2020-03-12: the morning leg of the crash (10:45, 21.6% in five minutes) ...
    ("BTCUSDT-1m-2020-03-12.csv", Timeframe.M5): ["2020-03-12 10:45"],
    # ... and, at 15m, 1h and 4h, the morning leg, its continuation and the evening leg.
    ("BTCUSDT-1m-2020-03-12.csv", Timeframe.M15): [
        "2020-03-12 10:45", "2020-03-12 11:00", "2020-03-12 23:45"],
    ("BTCUSDT-1m-2020-03-12.csv", Timeframe.H1): [
        "2020-03-12 10:00", "2020-03-12 11:00", "2020-03-12 23:00"],
    ("BTCUSDT-1m-2020-03-12.csv", Timeframe.H4): [
        "2020-03-12 08:00", "2020-03-12 12:00", "2020-03-12 20:00"],
}
FILES = ("BTCUSDT-1m-2019-05.csv.xz", "BTCUSDT-1m-2025-01.csv.xz", "BTCUSDT-1m-2020-03-12.csv")


@pytest.mark.parametrize("name", FILES)
def test_real_binance_candles_flagged_per_timeframe(name: str) -> None:
    minutes = binance_minutes(name)
    for timeframe in Timeframe:
        candles = resample(minutes, timeframe)
        # The seed rule loses real moves at every timeframe above 1m ...
        assert flagged(candles, timeframe, SEED) == SEED_FLAGS.get((name, timeframe), []), \
            timeframe
        # ... the per-timeframe limits keep every real candle of these months.
        assert flagged(candles, timeframe, DEFAULTS) == [], timeframe


def test_real_coinbase_daily_crash_is_kept_at_1d() -> None:
    daily = coinbase_daily()
    # Seed 20%, against the median of the five closes before each day: 2020-03-12 (low 4,644 vs
    # 7,938: 41.5%), 03-13 (low 3,858 vs 7,935: 51.4%), 03-14 (low 5,050 vs 7,895: 36.0%), and
    # the rebound on 03-19 and 03-20 (highs 6,441 and 6,990 vs 5,332 and 5,345: 20.8%, 30.8%).
    assert flagged(daily, Timeframe.D1, SEED) == [
        "2020-03-12 00:00", "2020-03-13 00:00", "2020-03-14 00:00", "2020-03-19 00:00",
        "2020-03-20 00:00"]
    assert flagged(daily, Timeframe.D1, DEFAULTS) == []


@pytest.mark.parametrize("timeframe", [Timeframe.M1, Timeframe.H1, Timeframe.D1])
def test_a_bad_print_is_still_refused_at_every_timeframe(timeframe: Timeframe) -> None:
    candles = resample(binance_minutes("BTCUSDT-1m-2025-01.csv.xz"), timeframe)
    candles = candles.astype(dict.fromkeys(("open", "high", "low", "close"), float))
    row = len(candles) - 3
    limit = DEFAULTS.value_for("max_jump", timeframe)
    candles.loc[row, "high"] = float(candles.loc[row - 1, "close"]) * (1 + limit * 1.5)
    verdicts = validate_candle_frame(candles, timeframe, DEFAULTS, NOW)
    assert verdicts["hard_rules"].iloc[row] == (Rule.PRICE_JUMP,)
    assert sum(bool(h) for h in verdicts["hard_rules"]) == 1


@pytest.mark.parametrize("timeframe", [Timeframe.M15, Timeframe.D1])
def test_every_engine_uses_the_same_per_timeframe_threshold(timeframe: Timeframe) -> None:
    if timeframe is Timeframe.D1:
        candles = coinbase_daily()
    else:
        candles = resample(binance_minutes("BTCUSDT-1m-2020-03-12.csv"), timeframe)
    for thresholds in (SEED, DEFAULTS, ValidationThresholds.from_spec(
            f"max_jump@{timeframe.value}=0.3")):
        verdicts = validate_candle_frame(candles, timeframe, thresholds, NOW)
        frames = [h + s for h, s in zip(verdicts["hard_rules"], verdicts["soft_rules"],
                                        strict=True)]
        validator = CandleValidator("BTC/USD", timeframe, thresholds, NOW)
        scalar = [validator.check(int(r.timestamp), r.open, r.high, r.low, r.close, r.volume).rules
                  for r in candles.itertuples()]
        assert scalar == frames
        assert candle_schema_rules(candles, timeframe, thresholds, NOW) == frames
        assert candle_expectation_rules(candles, timeframe, thresholds, NOW) == frames
