"""Helios market-data platform: ingest, validate, store and serve exchange data."""
