"""Great Expectations 1.x suites that carry the validation rules, built in code.

The suites run in an ephemeral context (no project folder, no analytics, no progress bars) over
the *derived* frames of ``validation.frames``: the OHLC, positivity, volume and timestamp rules are
column and column-pair expectations on the input columns and the time columns; the statistical
rules (price jump, absurd price, volume outlier) are expectations on the derived columns
``jump_ratio_*``, ``absurd_limit``/``max_price`` and ``volume_z``. Each expectation names its rule
in ``meta["rule"]``; with ``result_format=COMPLETE`` the ``unexpected_index_list`` of every
expectation gives the rows, so :func:`candle_expectation_rules` returns each row's failing rule
names, as ``validation.schemas`` does with pandera.

GE treats NaN as missing and skips it (pair expectations skip a row when either value is
missing), which is the rules' "a comparison with NaN is false"; ``not_a_number`` is expressed as
not-null plus "between -max float and +max float".
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.core.expect_column_pair_values_a_to_be_greater_than_b import (
    ExpectColumnPairValuesAToBeGreaterThanB,
)
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
    ExpectColumnValuesToBeInSet,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_in_set import (
    ExpectColumnValuesToNotBeInSet,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.validation.frames import (
    ABSURD_LIMIT,
    CONFIRMED,
    DIVERGENCE,
    FLAT_FILL,
    FUTURE_EXCESS,
    GRID_OFFSET,
    JUMP_AFTER_GAP,
    JUMP_CONTIGUOUS,
    MAX_PRICE,
    MIN_PRICE,
    STALENESS,
    TAKER_BUY_BAD,
    TS_ADVANCE,
    VOLUME_Z,
    derive_candle_frame,
    derive_ticker_frame,
)
from helios_pipeline.validation.rules import Rule, ValidationThresholds, ordered

_MAX = sys.float_info.max
_COMPLETE = {"result_format": "COMPLETE"}
# A pass/fail-only run costs about 40% of a COMPLETE one on a month of minutes (0.33 s vs 0.80 s),
# and the cost grows with the number of expectations: rows are listed (COMPLETE) only for the
# expectations that failed, typically the volume outliers of real data.
_BOOLEAN_ONLY = {"result_format": "BOOLEAN_ONLY"}


class ExpectationRunError(RuntimeError):
    """Great Expectations could not evaluate an expectation (not a data failure)."""


@dataclass(frozen=True)
class _Runner:
    context: Any
    candles: Any  # whole-dataframe batch definitions
    tickers: Any


@cache
def _runner() -> _Runner:
    """The one ephemeral context of this process, with a pandas source and two assets."""
    config = DataContextConfig(
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas("helios_validation")
    candles = source.add_dataframe_asset("candles").add_batch_definition_whole_dataframe("all")
    tickers = source.add_dataframe_asset("tickers").add_batch_definition_whole_dataframe("all")
    return _Runner(context, candles, tickers)


def _meta(rule: Rule) -> dict[str, Any]:
    return {"meta": {"rule": str(rule)}}


def _numbers(columns: tuple[str, ...]) -> list[Any]:
    """``not_a_number`` on each column: not null (NaN) and within +-max float (inf)."""
    found: list[Any] = []
    for column in columns:
        found.append(ExpectColumnValuesToNotBeNull(column=column, **_meta(Rule.NOT_A_NUMBER)))
        found.append(ExpectColumnValuesToBeBetween(
            column=column, min_value=-_MAX, max_value=_MAX, **_meta(Rule.NOT_A_NUMBER)))
    return found


def _at_least(a: str, b: str, rule: Rule, or_equal: bool = True) -> Any:
    """Column ``a`` >= ``b`` (> when not ``or_equal``); rows with a missing value are skipped."""
    return ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=a, column_B=b, or_equal=or_equal, ignore_row_if="either_value_is_missing",
        **_meta(rule))


def _at_most(column: str, limit: float, rule: Rule) -> Any:
    return ExpectColumnValuesToBeBetween(column=column, max_value=limit, **_meta(rule))


def _shared(t: ValidationThresholds) -> list[Any]:
    """Expectations shared by candles and ticks (prices and the derived statistics)."""
    return [
        ExpectColumnValuesToBeBetween(column=MIN_PRICE, min_value=0, strict_min=True,
                                          **_meta(Rule.NON_POSITIVE_PRICE)),
        _at_least(ABSURD_LIMIT, MAX_PRICE, Rule.ABSURD_PRICE, or_equal=False),
        _at_most(JUMP_CONTIGUOUS, t.max_jump, Rule.PRICE_JUMP),
        _at_most(JUMP_AFTER_GAP, t.max_jump, Rule.PRICE_JUMP_AFTER_GAP),
        ExpectColumnValuesToBeBetween(column=TS_ADVANCE, min_value=0,
                                          **_meta(Rule.OUT_OF_ORDER_TIMESTAMP)),
        _at_most(FUTURE_EXCESS, 0, Rule.FUTURE_TIMESTAMP),
    ]


@cache
def candle_suite(thresholds: ValidationThresholds) -> gx.ExpectationSuite:
    """The candle rules as an expectation suite over a derived candle frame."""
    t = thresholds
    _runner()  # a suite needs an active context
    suite = gx.ExpectationSuite(name="helios_candles")
    for expectation in [
        *_numbers(("open", "high", "low", "close", "volume")),
        ExpectColumnValuesToBeInSet(column=TAKER_BUY_BAD, value_set=[False],
                                        **_meta(Rule.NOT_A_NUMBER)),
        *_shared(t),
        *(_at_least(a, b, Rule.OHLC_INCONSISTENT) for a, b in (
            ("high", "open"), ("high", "close"), ("open", "low"), ("close", "low"),
            ("high", "low"))),
        ExpectColumnValuesToBeBetween(column="volume", min_value=0,
                                          **_meta(Rule.NEGATIVE_VOLUME)),
        ExpectColumnValuesToBeBetween(column="taker_buy_volume", min_value=0,
                                          **_meta(Rule.NEGATIVE_VOLUME)),
        _at_least("volume", "taker_buy_volume", Rule.NEGATIVE_VOLUME),
        ExpectColumnValuesToBeInSet(column=GRID_OFFSET, value_set=[0],
                                        **_meta(Rule.MISALIGNED_TIMESTAMP)),
        ExpectColumnValuesToNotBeInSet(column=TS_ADVANCE, value_set=[0],
                                           **_meta(Rule.DUPLICATE_TIMESTAMP)),
        _at_most(VOLUME_Z, t.volume_z, Rule.VOLUME_OUTLIER),
        ExpectColumnValuesToBeInSet(column=FLAT_FILL, value_set=[False],
                                        **_meta(Rule.FLAT_FILL)),
    ]:
        suite.add_expectation(expectation)
    return suite


@cache
def ticker_suite(thresholds: ValidationThresholds) -> gx.ExpectationSuite:
    """The tick rules as an expectation suite over a derived ticker frame."""
    t = thresholds
    _runner()
    suite = gx.ExpectationSuite(name="helios_tickers")
    for expectation in [
        *_numbers(("price", "volume", "bid", "ask")),
        *_shared(t),
        ExpectColumnValuesToBeBetween(column="volume", min_value=0,
                                          **_meta(Rule.NEGATIVE_VOLUME)),
        _at_most(STALENESS, t.stale_after_ms, Rule.STALE),
        _at_most(DIVERGENCE, t.max_divergence, Rule.CROSS_EXCHANGE_DIVERGENCE),
        _at_most(CONFIRMED, 0, Rule.CONFIRMED_MOVE),
    ]:
        suite.add_expectation(expectation)
    return suite


def suite_failures(
    suite: gx.ExpectationSuite, batch_definition: Any, derived: pd.DataFrame
) -> list[tuple[str, ...]]:
    """Validate a derived frame; per row, the rule names of the expectations it fails.

    Raises:
        ExpectationRunError: An expectation raised instead of judging the rows.
    """
    if not len(derived):
        return []
    frame = derived.reset_index(drop=True)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    quick = batch.validate(suite, result_format=_BOOLEAN_ONLY)
    _raise_on_errors(quick)
    passing: list[tuple[str, ...]] = [()] * len(derived)
    failed = [item.expectation_config for item in quick.results if not item.success]
    if not failed:
        return passing
    result = batch.validate(_failed_only(suite, failed), result_format=_COMPLETE)
    _raise_on_errors(result)
    # failing rows are few (a month of minutes is 44,640 rows): collect only those
    failing: dict[int, set[str]] = defaultdict(set)
    for item in result.results:
        rule = str(item.expectation_config.meta["rule"])
        for row in item.result.get("unexpected_index_list") or []:
            failing[int(row)].add(rule)
    rules = passing.copy()
    for row, names in failing.items():
        rules[row] = ordered(names)
    return rules


def _failed_only(suite: gx.ExpectationSuite, failed: list[Any]) -> gx.ExpectationSuite:
    """The expectations of ``suite`` that failed, to list their rows (usually one: outliers)."""
    return gx.ExpectationSuite(name=f"{suite.name}_failed", expectations=failed)


def _raise_on_errors(result: Any) -> None:
    for item in result.results:
        info = item.exception_info or {}
        if info.get("raised_exception"):
            raise ExpectationRunError(
                f"{item.expectation_config.type} failed to run: {info.get('exception_message')}"
            )


def candle_expectation_rules(
    frame: pd.DataFrame,
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
) -> list[tuple[str, ...]]:
    """Failing rule names per row of a candle frame (input of ``frames.validate_candle_frame``)."""
    t = (thresholds or ValidationThresholds()).for_timeframe(timeframe)
    derived = derive_candle_frame(frame, timeframe, t, now_ms)
    return suite_failures(candle_suite(t), _runner().candles, derived)


def candle_expectation_rules_by_day(
    days: Sequence[tuple[date, pd.DataFrame]],
    timeframe: Timeframe,
    thresholds: ValidationThresholds | None = None,
    now_ms: int | None = None,
) -> dict[date, list[tuple[str, ...]]]:
    """:func:`candle_expectation_rules` of many days in one suite run (its fixed cost is ~0.3 s).

    Each day's derived columns are computed on its own (rule windows start afresh every day, as
    ingest validates), then every day is validated in one batch.
    """
    t = (thresholds or ValidationThresholds()).for_timeframe(timeframe)
    derived = [derive_candle_frame(frame, timeframe, t, now_ms) for _, frame in days]
    if not days:
        return {}
    rules = suite_failures(candle_suite(t), _runner().candles, pd.concat(derived))
    out, start = {}, 0
    for (day, _), frame in zip(days, derived, strict=True):
        out[day] = rules[start : start + len(frame)]
        start += len(frame)
    return out


def ticker_expectation_rules(
    frame: pd.DataFrame, thresholds: ValidationThresholds | None = None
) -> list[tuple[str, ...]]:
    """Failing rule names per row of a ticker frame (input of ``frames.validate_ticker_frame``)."""
    t = thresholds or ValidationThresholds()
    return suite_failures(ticker_suite(t), _runner().tickers, derive_ticker_frame(frame, t))
