"""Fixtures shared by the Dagster-definition tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from helios_pipeline.sim.server import SimExchangeServer
from helios_pipeline_tests.conftest import KLINES_DIR

CRASH_DAY = date(2020, 3, 12)
CRASH = f"crash:symbol=BTCUSDT,at={CRASH_DAY}T12:00,factor=0.7"


@pytest.fixture(scope="module")
def crashing_venues() -> Iterator[tuple[SimExchangeServer, SimExchangeServer]]:
    """A primary and a reference venue, both with the same 30% one-minute crash.

    Both replay the real 2020-03-12 BTCUSDT day with the sim fault ``crash:`` at 12:00.
    """
    with SimExchangeServer(port=0, data_dir=KLINES_DIR, faults=CRASH) as primary, \
            SimExchangeServer(port=0, data_dir=KLINES_DIR, faults=CRASH) as reference:
        yield primary, reference
