"""The errors a query raises: one for a question asked wrongly, one for a tier that is down."""

from __future__ import annotations


class QueryError(ValueError):
    """A query's arguments cannot be answered as given (the message says which and why)."""


class TierUnavailableError(RuntimeError):
    """A storage tier the answer needs cannot be reached (e.g. Redis is down)."""
