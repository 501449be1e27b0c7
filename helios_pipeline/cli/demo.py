"""``helios demo``: the whole batch path offline, with faults to catch.

Two simulated venues (Binance and OKX) on local ports; the real ccxt clients load their markets;
Dagster backfills the last closed days for a few symbols from both, derives 5m..1d candles,
compares the venues and writes the day's data-quality report. The Binance sim injects transient
faults (a 429, two 503s) that retries absorb, and data faults on ETH/USDT yesterday (a price spike,
a broken OHLC candle, a 30-minute gap) that validation catches: the spike and the broken candle
are quarantined with their reasons, the gap is recorded, and the report shows all three.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from helios_pipeline.cli.backfill import backfill_with_progress, preflight, print_partitions
from helios_pipeline.cli.common import console, dagster_instance, parse_symbols, positive_int
from helios_pipeline.settings import Settings
from helios_pipeline.sim.faults import REQUEST_KINDS
from helios_pipeline.storage.paths import market_data_root, metadata_path, quality_report_path
from helios_pipeline.storage.quarantine import QuarantineStore

DEMO_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
DEMO_DAYS = 3

def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios demo``."""
    demo = sub.add_parser("demo", help="simulated exchange -> ccxt -> Dagster -> files, offline")
    demo.add_argument("--symbols", default=",".join(DEMO_SYMBOLS))
    demo.add_argument("--days", type=positive_int, default=DEMO_DAYS,
                      help="closed days to backfill")
    demo.set_defaults(handler=lambda args: run_demo(parse_symbols(args.symbols), args.days))


TRANSIENT_FAULTS = "http429:count=1,retry_after=1,path=klines;http5xx:count=2,path=klines"


def data_faults(day: date) -> str:
    """Bad data the demo's Binance venue serves for ETH/USDT on ``day``."""
    return (f"spike:symbol=ETHUSDT,at={day}T12:00,factor=3;"
            f"broken_ohlc:symbol=ETHUSDT,at={day}T13:00;"
            f"missing:symbol=ETHUSDT,start={day}T15:00,minutes=30")


def divergence_fault(day: date) -> str:
    """A 10-minute 7% divergence the demo's OKX venue serves for BTC/USDT on ``day``."""
    return f"divergence:symbol=BTCUSDT,start={day}T09:00,minutes=10,factor=1.07"


def run_demo(symbols: list[str], days: int) -> int:
    """Run the demo; returns the process exit code."""
    from helios_pipeline.sim.server import SimExchangeServer

    yesterday = datetime.now(tz=UTC).date() - timedelta(days=1)
    start = yesterday - timedelta(days=days - 1)
    binance_faults = f"{TRANSIENT_FAULTS};{data_faults(yesterday)}"
    with (SimExchangeServer(port=0, faults=binance_faults) as binance,
          SimExchangeServer(port=0, venue="okx", faults=divergence_fault(yesterday)) as okx):
        console.print(f"[bold]1.[/] Simulated venues: Binance {binance.base_url}, OKX "
                      f"{okx.base_url}\n   Binance injects: {binance_faults}\n"
                      f"   OKX injects: {divergence_fault(yesterday)}")
        settings = replace(
            Settings.from_env(), exchange_url=binance.base_url, symbols=tuple(symbols),
            reference_exchange="okx", reference_exchange_url=okx.base_url,
        )
        console.print("[bold]2.[/] Loading markets of both venues through ccxt (trading rules)")
        preflight(settings, symbols)
        preflight(replace(settings, exchange="okx", exchange_url=okx.base_url), symbols)
        console.print(f"[bold]3.[/] Backfilling {len(symbols)} symbols x {days} days from both "
                      "venues through Dagster, with 5m..1d derived and checked")
        failures = backfill_with_progress(settings, symbols, start, yesterday)
        console.print("[bold]4.[/] Cross-exchange divergence and the data-quality report")
        failures += followups(settings, symbols, start, yesterday)
        stats = binance.stats()
    print_partitions(settings, symbols, start, yesterday)
    summarise(settings, symbols, start, yesterday, stats)
    return 1 if failures else 0


def followups(settings: Settings, symbols: list[str], start: date, end: date) -> int:
    """Materialise the divergence view and the reports; returns the number of failed runs."""
    from helios_pipeline.defs.backfill import run_followups

    with dagster_instance() as instance:
        outcome = run_followups(symbols, start, end, instance, settings, log_level="WARNING")
    for planned, error in outcome.failures:
        console.print(f"[red]{planned.symbol} {planned.days[0]}:[/] {error}")
    return len(outcome.failures)


def summarise(settings: Settings, symbols: list[str], start: date, end: date,
              stats: dict[str, object]) -> None:
    """Print what the faults did and where everything is."""
    fired = stats.get("faults_fired")
    counts = fired if isinstance(fired, dict) else {}
    request_faults = ", ".join(
        f"{kind} x{count}" for kind, count in sorted(counts.items())
        if kind in REQUEST_KINDS  # the venue also counts every response a data fault changed
    ) or "none"
    data = stats.get("data_faults")
    data_faults = "; ".join(data) if isinstance(data, list) and data else "none"
    console.print(f"Binance sim answered {stats.get('total_requests', '?')} requests.\n"
                  f"  Request faults, absorbed by retries: {request_faults}\n"
                  f"  Data faults, caught by validation (below and in the report): {data_faults}")
    quarantine = QuarantineStore(settings.data_dir)
    for symbol in symbols:
        for record in quarantine.load(symbol, start, end):
            when = datetime.fromtimestamp((record.timestamp_ms or 0) / 1000, tz=UTC)
            console.print(f"Quarantined {symbol} {when:%Y-%m-%d %H:%M}: {', '.join(record.rules)}")
    console.print(f"Report:   {quality_report_path(settings.data_dir, end).resolve()}")
    console.print(f"Files:    {market_data_root(settings.data_dir).resolve()}")
    console.print(f"Catalog:  {metadata_path(settings.data_dir).resolve()}")
    console.print("Dagster UI: run [bold]helios ui[/] and open http://127.0.0.1:3000 "
                  "(Assets > ohlcv_1m > Partitions; Lineage; Checks)")
