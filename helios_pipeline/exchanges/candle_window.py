"""The pages of a candle range and how their answers merge into closed, unique, sorted candles.

:class:`CandleWindow` is the arithmetic behind ``ExchangeClient.fetch_ohlcv`` and
``fetch_candles``: the first aligned open time, the page windows of ``CHUNK_CANDLES`` candles,
and the rule that a candle is returned only when it opens inside the range and has closed by
this process's clock (``open + length <= now``). Pages are merged in order; the first answer for
an open time wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from helios_pipeline.domain.columns import TIMESTAMP
from helios_pipeline.domain.models import OHLCVData
from helios_pipeline.domain.schema import EXCHANGE_SCHEMA
from helios_pipeline.domain.timeframe import Timeframe

CHUNK_CANDLES = 1000


@dataclass(frozen=True)
class CandleBatch:
    """Closed candles of a range, as ``fetch_candles`` returns them.

    Attributes:
        table: Candles parsed in bulk (:data:`~helios_pipeline.domain.schema.EXCHANGE_SCHEMA`),
            sorted by open time, one per open time.
        candles: Candles of pages that needed the exact per-row parser, sorted, none of them
            at an open time the table holds.
    """

    table: pa.Table
    candles: list[OHLCVData]

    def __len__(self) -> int:
        """Number of candles in the batch."""
        return int(self.table.num_rows) + len(self.candles)


@dataclass(frozen=True)
class CandleWindow:
    """Which candles of ``[start_ms, end_ms)`` are asked for and returned at ``now_ms``."""

    timeframe: Timeframe
    start_ms: int
    end_ms: int
    now_ms: int

    @property
    def first(self) -> int:
        """The first aligned open time at or after ``start_ms``."""
        step = self.timeframe.ms
        return -(-self.start_ms // step) * step

    @property
    def stop(self) -> int:
        """End of the window: candles opening at or after it are still open or out of range."""
        return min(self.end_ms, self.timeframe.floor(self.now_ms))

    def pages(self) -> list[tuple[int, int]]:
        """``[lo, hi)`` windows of at most ``CHUNK_CANDLES`` candles covering the range."""
        span, stop = CHUNK_CANDLES * self.timeframe.ms, self.stop
        return [(lo, min(lo + span, stop)) for lo in range(self.first, stop, span)]

    def keeps(self, open_ms: int) -> bool:
        """Whether a candle opening at ``open_ms`` belongs in the answer."""
        return self.first <= open_ms < self.stop and open_ms + self.timeframe.ms <= self.now_ms

    def merge_candles(
        self, pages: Iterable[Sequence[tuple[int, OHLCVData]]]
    ) -> list[OHLCVData]:
        """Candles of parsed pages in the window, first answer per open time, sorted."""
        merged: dict[int, OHLCVData] = {}
        for page in pages:
            for open_ms, candle in page:
                if self.keeps(open_ms):
                    merged.setdefault(open_ms, candle)
        return [merged[k] for k in sorted(merged)]

    def merge_table(self, pages: Sequence[pa.Table]) -> pa.Table:
        """:meth:`merge_candles` for bulk-parsed pages."""
        if not pages:
            return EXCHANGE_SCHEMA.empty_table()
        table = pa.concat_tables(pages)
        opens = table.column(TIMESTAMP).cast(pa.int64())
        closes = pc.add(opens, self.timeframe.ms)
        inside = pc.and_(pc.and_(pc.greater_equal(opens, self.first), pc.less(opens, self.stop)),
                         pc.less_equal(closes, self.now_ms))
        table = table.filter(inside)
        times = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
        _, first_of_each = np.unique(times, return_index=True)  # sorted by time, first answer
        return table.take(pa.array(first_of_each))
