"""Trading inputs: indicators, regime, support/resistance, volume profile, grid suggestions.

Pure computation over arrays and frames; no I/O.
"""
