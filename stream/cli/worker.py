"""``statusflow worker``: run the streaming worker (a Faust worker) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from stream.config import Settings


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("worker", help="run the streaming worker on Kafka")
    add_settings_arguments(parser)
    parser.add_argument("--web-port", type=int, help="port of the worker's web server and /metrics (default 6066)")
    parser.add_argument("--store", help="table store: memory:// (the default and, for now, the only one)")
    parser.add_argument("--log-level", help="warning (default), info, debug")
    parser.set_defaults(run=run)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags every Kafka-facing command shares."""
    parser.add_argument("--broker", help="Kafka bootstrap server (default 127.0.0.1:9092, or STATUSFLOW_BROKER)")
    parser.add_argument("--partitions", type=int, help="partitions of topics the worker creates (default 8)")


def settings_from(args: argparse.Namespace) -> Settings:
    """Build Settings from the environment and whichever flags this command has."""
    names = ("broker", "partitions", "web_port", "store", "log_level")
    return Settings.from_env(**{name: getattr(args, name, None) for name in names})


def _worker_class() -> Any:
    import faust  # noqa: PLC0415 - see run()

    from stream.logs import rate_limit  # noqa: PLC0415

    class Worker(faust.Worker):
        """Faust's worker, with repeated log lines held back (an outage logs each error once per 10 s)."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            rate_limit(logger)

    return Worker


def run(args: argparse.Namespace) -> int:
    """Create the topics, then hand the process to Faust's worker (which handles signals)."""
    # faust is heavy; `statusflow resolve` should not pay for it, hence the imports in here
    from stream.app import create_app  # noqa: PLC0415
    from stream.topics import ensure_topics  # noqa: PLC0415

    _Worker = _worker_class()  # noqa: N806 - a class
    settings = settings_from(args)
    if not settings.store.startswith("memory:"):
        # Faust's RocksDB store finds a key's partition from "the current event"; the batched
        # resolve agent writes many partitions per batch, so it would write to the wrong one.
        print(f"statusflow worker: store {settings.store!r} is not supported; use memory://", file=sys.stderr)
        return 2
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Faust's worker runs on this same loop afterwards
    created = loop.run_until_complete(ensure_topics(settings))
    logging.getLogger("statusflow").info("created topics: %s", created)
    worker = _Worker(create_app(settings), loglevel=settings.log_level, quiet=True, loop=loop)
    worker.spinner = None  # its terminal escape codes end up in every log file otherwise
    worker.execute_from_commandline()  # returns only via SystemExit
    return 0
