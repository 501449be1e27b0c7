"""Secrets never leave: redaction, the encrypted credential store and the audit trail.

This layer sits just above ``domain``: storage, exchanges, settings, the CLI and ``defs`` use
it; it uses nothing of Helios but ``domain``.
"""
