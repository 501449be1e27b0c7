"""Live 1m candles reconciled with the exchange's REST 1m candles, minute by minute, exactly.

The stream service builds 1m candles from websocket trades (:mod:`.candles`) and keeps them in
Redis for a while (``storage.hot.live_candles``); the batch side ingests the same minutes from
the REST API into ``ohlcv_1m``. :func:`reconcile_candles` compares the two for one window (an
hour) and says where they differ; :func:`reconcile_hour` fetches the REST side first, through
the same :meth:`ExchangeClient.fetch_ohlcv` call ``ohlcv_1m`` ingestion makes.

Rules, per minute of the window:

* Only **complete** minutes are compared: a live candle with ``complete=False`` (trades of its
  minute may be missing: the stream started, lost its feed or shed a trade then) and a REST
  candle cut short by an exchange outage (close time before the minute's end) are skipped and
  listed as ``incomplete``.
* Both sides have the minute: open, high, low, close and volume must be equal as ``Decimal``
  values (``100.10`` equals ``100.1``; no float, no tolerance). Each differing field is one
  :class:`CandleDifference`.
* Only REST has it: ``missing_live``, unless the REST candle has zero volume: a minute without
  trades yields no live candle (gaps are never filled), so both sides agree.
* Only the stream has it: ``missing_rest``.
* Live candles that a late trade amended (``amended``, ``version`` > 1) are listed whatever the
  outcome, and their differences say so: the REST candle is the authority for such a minute.

Nothing here imports Dagster; the ``ticker_snapshots`` asset check is a thin wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from helios_pipeline.domain.columns import COMPARED_FIELDS
from helios_pipeline.domain.live_candle import LiveCandle
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.timeframe import MINUTE_MS, Timeframe, datetime_to_ms, ms_to_datetime
from helios_pipeline.exchanges.client import ExchangeClient

DifferenceKind = Literal["missing_live", "missing_rest", "mismatch"]


@dataclass(frozen=True, slots=True)
class CandleDifference:
    """One way the live and REST candles of a minute disagree.

    Attributes:
        open_ms: Open time of the minute, ms epoch UTC.
        kind: ``missing_live`` (only REST has the minute), ``missing_rest`` (only the stream
            has it) or ``mismatch`` (both have it; ``field`` differs).
        field: The differing field of a mismatch (open, high, low, close or volume).
        live: The live candle's value of ``field`` (its volume for ``missing_rest``).
        rest: The REST candle's value of ``field`` (its volume for ``missing_live``).
        live_version: Version of the live candle, when there is one.
        amended: Whether a late trade amended the live candle.
    """

    open_ms: int
    kind: DifferenceKind
    field: str | None = None
    live: Decimal | None = None
    rest: Decimal | None = None
    live_version: int | None = None
    amended: bool = False

    def describe(self) -> str:
        """One readable line: ``13:07 close: live 0.6963 != REST 0.6964 (amended, v2)``."""
        minute = f"{ms_to_datetime(self.open_ms):%H:%M}"
        flag = f" (amended, v{self.live_version})" if self.amended else ""
        if self.kind == "missing_live":
            return f"{minute} missing live: REST has a candle (volume {self.rest}), the stream none"
        if self.kind == "missing_rest":
            return (f"{minute} missing REST: the stream has a candle (volume {self.live}){flag}, "
                    "REST none")
        return f"{minute} {self.field}: live {self.live} != REST {self.rest}{flag}"


@dataclass(frozen=True)
class Reconciliation:
    """The live and REST 1m candles of one window, compared.

    ``compared == matched + len(missing_live) + len(missing_rest) + len(mismatched)``; minutes
    in ``incomplete`` are not compared, and minutes neither side has are not counted.

    Attributes:
        start_ms: Window start (inclusive), ms epoch UTC.
        end_ms: Window end (exclusive).
        live_candles: Live candles in the window.
        rest_candles: REST candles in the window.
        compared: Minutes compared.
        matched: Compared minutes on which both sides agree.
        missing_live: Minutes REST has (with trades) and the stream does not.
        missing_rest: Minutes the stream has and REST does not.
        mismatched: Minutes both have with at least one differing field.
        incomplete: Minutes skipped because one side is incomplete.
        amended: Minutes whose live candle a late trade amended.
        differences: Every difference, by minute (then field order).
    """

    start_ms: int
    end_ms: int
    live_candles: int
    rest_candles: int
    compared: int
    matched: int
    missing_live: tuple[int, ...]
    missing_rest: tuple[int, ...]
    mismatched: tuple[int, ...]
    incomplete: tuple[int, ...]
    amended: tuple[int, ...]
    differences: tuple[CandleDifference, ...]

    @property
    def agrees(self) -> bool:
        """True when no compared minute differs.

        An hour without live candles is judged by the caller (``live_candles`` is 0 then).
        """
        return not (self.missing_live or self.missing_rest or self.mismatched)


class _Tally:
    """Outcomes of the minutes compared so far."""

    def __init__(self) -> None:
        self.matched = 0
        self.by_kind: dict[str, list[int]] = {
            "missing_live": [], "missing_rest": [], "mismatch": [], "incomplete": []}
        self.differences: list[CandleDifference] = []


def reconcile_candles(
    live: Iterable[LiveCandle], rest: Iterable[OHLCVData], start_ms: int, end_ms: int
) -> Reconciliation:
    """Compare live and REST 1m candles opening in ``[start_ms, end_ms)`` minute by minute.

    Args:
        live: Live candles (several versions of a minute: the highest version counts).
        rest: The exchange's REST 1m candles.
        start_ms: Window start, ms epoch UTC (inclusive).
        end_ms: Window end (exclusive).

    Raises:
        ValueError: ``end_ms`` is before ``start_ms``, or a REST candle is not a 1m candle.
    """
    if end_ms < start_ms:
        raise ValueError(f"reconcile_candles: end_ms={end_ms} is before start_ms={start_ms}.")
    lives: dict[int, LiveCandle] = {}
    for candle in live:
        if start_ms <= candle.open_ms < end_ms and (
                candle.open_ms not in lives or candle.version > lives[candle.open_ms].version):
            lives[candle.open_ms] = candle
    rests: dict[int, OHLCVData] = {}
    for row in rest:
        if row.timeframe is not Timeframe.M1:
            raise ValueError(f"REST candle of {row.symbol} at {row.timestamp} is "
                             f"{row.timeframe.value}, not 1m: reconcile 1m candles only.")
        open_ms = datetime_to_ms(row.timestamp)
        if start_ms <= open_ms < end_ms:
            rests[open_ms] = row
    tally = _Tally()
    for minute in sorted(lives.keys() | rests.keys()):
        _compare_minute(tally, minute, lives.get(minute), rests.get(minute))
    kinds = {kind: tuple(minutes) for kind, minutes in tally.by_kind.items()}
    differing = len(kinds["missing_live"]) + len(kinds["missing_rest"]) + len(kinds["mismatch"])
    return Reconciliation(
        start_ms=start_ms, end_ms=end_ms, live_candles=len(lives), rest_candles=len(rests),
        compared=tally.matched + differing, matched=tally.matched,
        missing_live=kinds["missing_live"], missing_rest=kinds["missing_rest"],
        mismatched=kinds["mismatch"], incomplete=kinds["incomplete"],
        amended=tuple(m for m, c in sorted(lives.items()) if _amended(c)),
        differences=tuple(tally.differences),
    )


def _compare_minute(
    tally: _Tally, minute: int, live: LiveCandle | None, rest: OHLCVData | None
) -> None:
    """Add one minute's outcome (``live`` or ``rest`` may be missing, not both) to ``tally``."""
    if (live is not None and not live.complete) or (rest is not None and _cut_short(rest)):
        tally.by_kind["incomplete"].append(minute)
    elif live is not None and rest is not None:
        found = [CandleDifference(minute, "mismatch", name, getattr(live, name),
                                  getattr(rest, name), live.version, _amended(live))
                 for name in COMPARED_FIELDS if getattr(live, name) != getattr(rest, name)]
        if found:
            tally.by_kind["mismatch"].append(minute)
            tally.differences.extend(found)
        else:
            tally.matched += 1
    elif live is not None:
        tally.by_kind["missing_rest"].append(minute)
        tally.differences.append(CandleDifference(minute, "missing_rest", live=live.volume,
                                                  live_version=live.version,
                                                  amended=_amended(live)))
    elif rest is not None and rest.volume == 0:  # no trades: no live candle is the right answer
        tally.matched += 1
    elif rest is not None:
        tally.by_kind["missing_live"].append(minute)
        tally.differences.append(CandleDifference(minute, "missing_live", rest=rest.volume))


def _amended(candle: LiveCandle) -> bool:
    return candle.amended or candle.version > 1


def _cut_short(candle: OHLCVData) -> bool:
    """A REST candle the exchange closed before the minute ended (an outage on its side)."""
    open_ms = datetime_to_ms(candle.timestamp)
    return candle.close_time_ms is not None and candle.close_time_ms < open_ms + MINUTE_MS - 1


async def reconcile_hour(
    client: ExchangeClient, symbol: str, start_ms: int, live: Sequence[LiveCandle]
) -> Reconciliation:
    """Fetch the REST 1m candles of the hour from ``start_ms`` and reconcile ``live`` with them.

    Args:
        client: Open exchange client (the one ``ohlcv_1m`` ingestion uses).
        symbol: ccxt unified symbol.
        start_ms: Start of the UTC hour, ms epoch.
        live: The hour's live candles.

    Raises:
        ExchangeError: The REST candles could not be fetched (see ``fetch_ohlcv``).
    """
    end_ms = start_ms + Timeframe.H1.ms
    rest = await client.fetch_ohlcv(symbol, Timeframe.M1, start_ms, end_ms)
    return reconcile_candles(live, rest, start_ms, end_ms)
