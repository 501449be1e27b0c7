"""Validation: the rules, thresholds and score, and the engines that apply them.

Modules:
    rules: rule names, hard and soft sets, thresholds, score, :class:`~.rules.Verdict`.
    scalar: stateful per-point validators for the realtime path (candles and ticks).
    frames: the same rules vectorised over DataFrames, with the derived columns they use.
    schemas: pandera models carrying the rules (per-row failing rule names).
    expectations: Great Expectations suites carrying the rules (per-row failing rule names).
    outcome: accepted candles and quarantine records for a batch of candles or raw rows.
    stored: the pandera model of a stored partition (the blocking schema check).
    tables: exact Arrow candle tables as the float frames the engines read.
"""
