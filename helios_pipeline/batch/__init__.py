"""Batch path as plain Python: fetch a partition from the exchange and store it (no Dagster)."""
