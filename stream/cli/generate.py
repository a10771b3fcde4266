"""``statusflow generate``: write a reproducible synthetic event stream (for demos and benchmarks)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from stream.synthetic import stream


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("generate", help="write a synthetic, shuffled event stream as JSON lines")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10, help="distinct events per member")
    parser.add_argument("--duplicates", type=float, default=0.0, help="fraction of events sent twice")
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the stream to stdout."""
    out = sys.stdout.buffer
    for envelope in stream(args.members, args.events, seed=args.seed, duplicates=args.duplicates):
        out.write(orjson.dumps(envelope) + b"\n")
    return 0
