"""The ``statusflow`` command: one sub-command per module of this package."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from stream import __version__, vocabularies
from stream.config import ConfigError

COMMANDS = ("codes", "resolve", "worker", "produce", "topics", "demo", "generate", "webhooks")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the parser of the sub-command ``argv`` names, or of every sub-command if it names none."""
    # Only the named command's module is imported: the Kafka ones pull in aiokafka and faust, a
    # tenth of a second that `statusflow resolve` has no use for.
    named = next((arg for arg in (sys.argv[1:] if argv is None else argv) if not arg.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="statusflow", description="Resolve message-status events to one truth.")
    parser.add_argument("--version", action="version", version=f"statusflow {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name in [named] if named in COMMANDS else COMMANDS:
        importlib.import_module(f"stream.cli.{name}").add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for usage errors, as argparse does)."""
    try:  # house vocabularies join the core before a command's imports index the vocabularies
        vocabularies.install(os.environ)
    except ConfigError as error:
        print(f"statusflow: {error}", file=sys.stderr)
        return 2
    args = build_parser(argv).parse_args(argv)
    # Member states are acyclic tuples, freed by reference counting; the cyclic collector would
    # only rescan millions of live objects (measured: a third of `resolve`'s time).
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        status: int = args.run(args)
    except BrokenPipeError:  # `statusflow resolve ... | head` is a normal thing to do
        sys.stderr.close()
        return 0
    except ConfigError as error:
        print(f"statusflow: {error}", file=sys.stderr)
        return 2
    return status
