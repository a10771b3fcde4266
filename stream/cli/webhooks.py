"""``statusflow webhooks``: receive providers' webhooks, check their signatures, write them to the raw topics."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from stream.cli.worker import add_settings_arguments, settings_from
from stream.config import Settings
from stream.web.settings import WebhookSettings

log = logging.getLogger("stream.web.webhooks")


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser(
        "webhooks", help="receive provider webhooks (signatures checked) into the raw topics, POST /webhooks/<format>"
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1, or STATUSFLOW_WEBHOOKS_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8088, or STATUSFLOW_WEBHOOKS_PORT)")
    parser.add_argument("--log-level", help="warning (default), info, debug")
    add_settings_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; exit 1 with one line if Kafka cannot be reached at start."""
    from stream.kafka.client import KafkaAccessError  # noqa: PLC0415 - aiokafka only for the Kafka commands

    settings = settings_from(args)
    hooks = WebhookSettings.from_env(host=args.host, port=args.port)
    level = (args.log_level or "warning").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from stream.logs import rate_limit  # noqa: PLC0415

    rate_limit(logging.getLogger())
    from stream.web.webhooks import warnings_at_start  # noqa: PLC0415

    for line in warnings_at_start(hooks):
        log.warning(line)  # each its own message: the rate limit holds back repeats of one template
    try:
        asyncio.run(serve(settings, hooks))
    except KafkaAccessError as error:
        print(f"statusflow webhooks: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


async def serve(settings: Settings, hooks: WebhookSettings) -> None:
    """Check Kafka, start the producer and the HTTP server, and serve until a stop signal."""
    from aiohttp import web  # noqa: PLC0415

    from stream.kafka.client import probe  # noqa: PLC0415
    from stream.web.webhooks import Receiver, make_app  # noqa: PLC0415

    await probe(settings)
    receiver = Receiver(settings, hooks)
    await receiver.start()
    runner = web.AppRunner(make_app(receiver), access_log=None)
    try:
        for topic in await receiver.missing_topics():
            log.warning("topic %s does not exist (statusflow topics create): its format's requests answer 503", topic)
        await runner.setup()
        await web.TCPSite(runner, hooks.host, hooks.port).start()
        print(
            f"statusflow webhooks: listening on http://{hooks.host}:{hooks.port}/webhooks/<format>, "
            f"writing to Kafka at {settings.broker}",
            file=sys.stderr,
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        await receiver.stop()
