"""Every test here runs inside its own Dagster instance context.

Dagster keeps the current instance's definitions-state storage in a context variable that
entering an instance sets and leaving it resets. A test that leaves instances in another order
than it entered them (or leaves one to the garbage collector) leaves that variable pointing at a
dead instance, and the next test that loads definitions outside an instance fails with
"Attempted to resolve undefined DagsterInstance weakref". An instance entered around each test
keeps every test independent of what ran before it.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest


@pytest.fixture(autouse=True)
def dagster_instance_context() -> Iterator[None]:
    with dg.DagsterInstance.ephemeral():
        yield
