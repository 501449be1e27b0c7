"""``helios quarantine release SYMBOL TIME``: restore one quarantined candle by hand."""

from __future__ import annotations

import argparse

from helios_pipeline.batch.release import ReleaseError, parse_time, release_candle
from helios_pipeline.cli.common import CliError, console
from helios_pipeline.domain.symbols import normalize_symbol
from helios_pipeline.security.audit import AuditLog
from helios_pipeline.settings import Settings
from helios_pipeline.storage.candles import CandleStore
from helios_pipeline.storage.metadata import MetadataStore
from helios_pipeline.storage.paths import metadata_path
from helios_pipeline.storage.quarantine import QuarantineStore


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios quarantine``."""
    quarantine = sub.add_parser("quarantine", help="act on quarantined candles",
                                description="Act on quarantined candles.")
    actions = quarantine.add_subparsers(required=True, metavar="ACTION")
    release = actions.add_parser(
        "release", help="restore one quarantined 1m candle (a real move) by hand",
        description="Put one quarantined 1m candle back into its partition (flagged "
                    "confirmed_move, a new catalog version), record the release in the catalog "
                    "and the audit trail, and derive 5m..1d of that day again.")
    release.add_argument("symbol", help="e.g. BTC/USDT")
    release.add_argument("time", help="the candle's open time, UTC, e.g. 2020-03-12T12:00")
    release.add_argument("--reason", default="checked by hand",
                         help="why it is real (kept in the catalog)")
    release.set_defaults(handler=_release)


def _release(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    symbol = normalize_symbol(args.symbol)
    open_ms = parse_time(args.time)
    root = settings.data_dir
    try:
        released = release_candle(
            CandleStore(root, keep_versions=settings.keep_versions),
            MetadataStore(metadata_path(root)), QuarantineStore(root), settings.exchange,
            symbol, open_ms, args.reason, settings.validation)
    except ReleaseError as exc:
        raise CliError(str(exc)) from None
    c = released.candle
    AuditLog(metadata_path(root)).record(
        "quarantine_release", f"{settings.exchange}:{symbol} {c.timestamp:%Y-%m-%d %H:%M}",
        reason=args.reason, version=released.minute.record.version)
    console.print(f"Released {symbol} {c.timestamp:%Y-%m-%d %H:%M} UTC (open {c.open} high "
                  f"{c.high} low {c.low} close {c.close}): ohlcv_1m "
                  f"v{released.minute.record.version}, derived "
                  + ", ".join(f"{tf.value} v{v}" for tf, v in released.derived_versions.items()))
    return 0
