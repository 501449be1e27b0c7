"""``helios sim-exchange``: a simulated venue (Binance or OKX) in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from helios_pipeline.cli.common import console


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``helios sim-exchange``."""
    sim = sub.add_parser("sim-exchange", help="run the simulated Binance exchange")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--data", type=Path, help="folder of Binance kline CSVs to replay")
    sim.add_argument("--faults", default="", help="fault spec, e.g. 'http429:rate=0.1'")
    sim.add_argument("--venue", choices=("binance", "okx"), default="binance",
                     help="wire format to speak (okx: a second venue for cross-exchange checks)")
    sim.set_defaults(handler=_sim_exchange)


def _sim_exchange(args: argparse.Namespace) -> int:
    from helios_pipeline.sim.server import serve_forever

    url = f"http://127.0.0.1:{args.port}"
    console.print(f"Simulated {args.venue} exchange on {url} (Ctrl-C stops it)")
    if args.venue == "binance":
        console.print(f"  point Helios at it: HELIOS_EXCHANGE_URL={url} (websockets: {url}/ws)")
    else:
        console.print(f"  use it as the second venue: HELIOS_REFERENCE_EXCHANGE=okx "
                      f"HELIOS_REFERENCE_EXCHANGE_URL={url}")
    serve_forever(port=args.port, data_dir=args.data, faults=args.faults, venue=args.venue)
    return 0
