"""Cross-exchange comparison of one symbol x day: where two venues' closes diverge.

The arbitrage view: every minute both venues have, and the ones whose closes differ by more than
the threshold (``ValidationThresholds.max_divergence``, 5% by default) written to a CSV beside the
candles. Plain Python; the ``cross_exchange_divergence`` asset calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from helios_pipeline.domain.timeframe import Timeframe
from helios_pipeline.quality.detectors import compare_exchanges
from helios_pipeline.storage.atomic import write_atomic
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.paths import divergence_path


@dataclass(frozen=True)
class DivergenceDay:
    """The comparison of one symbol's day on two venues.

    Attributes:
        compared: Minutes both venues have.
        above: Rows above the threshold (``price_a``, ``price_b``, ``divergence``), by time.
        max_divergence: Largest ``|a/b - 1|`` of the day (0.0 when nothing was compared).
        path: CSV listing the rows above the threshold.
    """

    compared: int
    above: pd.DataFrame
    max_divergence: float
    path: Path


def compare_day(
    data_dir: Path, symbol: str, day: date, reference: str, threshold: float
) -> DivergenceDay:
    """Compare the primary venue's 1m closes with the ``reference`` venue's for ``day``."""
    store = CandleStore(data_dir)
    ours = store.load_frame(symbol, Timeframe.M1, day, day)
    theirs = store.load_frame(symbol, Timeframe.M1, day, day, exchange=reference)
    if ours.empty or theirs.empty:
        compared = pd.DataFrame(columns=["price_a", "price_b", "divergence", "above_threshold"])
    else:
        compared = compare_exchanges(ours["close"], theirs["close"], threshold)
    above = compared.loc[compared["above_threshold"].astype(bool),
                         ["price_a", "price_b", "divergence"]]
    path = divergence_path(data_dir, symbol, reference, day)
    write_atomic(path, above.to_csv(index_label="timestamp").encode())
    worst = float(compared["divergence"].max()) if len(compared) else 0.0
    return DivergenceDay(len(compared), above, 0.0 if pd.isna(worst) else worst, path)
