"""``statusflow produce``: replay a JSON-lines file into a raw topic, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from stream.cli.worker import add_settings_arguments, settings_from
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.providers.registry import FORMATS


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("produce", help="replay a JSON-lines file into a raw Kafka topic")
    parser.add_argument(
        "file", metavar="FILE", help="one record a line: envelopes, or a provider's webhook bodies with --format"
    )
    parser.add_argument("--topic", help="target topic (default: the format's raw topic, message-events[.<format>])")
    parser.add_argument("--format", choices=FORMATS, default="envelope")
    add_settings_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Produce every non-empty line of FILE as one record."""
    if not os.path.isfile(args.file):
        print(f"statusflow produce: no such file: {args.file}", file=sys.stderr)
        return 2
    settings = settings_from(args)
    topic = args.topic or settings.raw_topic(args.format)
    with open(args.file, "rb") as handle:
        lines = [line.rstrip(b"\r\n") for line in handle if line.strip()]
    bar = _progress(os.path.getsize(args.file), os.path.basename(args.file))
    sent = asyncio.run(_produce(settings, topic, lines, bar, keyed=args.format == "envelope"))
    if bar is not None:
        bar.close()
    print(f"statusflow produce: {sent} records to {topic} on {settings.broker}", file=sys.stderr)
    return 0


async def _produce(settings: Any, topic: str, lines: list[bytes], bar: Any, *, keyed: bool) -> int:
    await ensure_topics(settings)
    on_sent = bar.update if bar is not None else (lambda _: None)
    return await produce_lines(settings, topic, lines, member_key if keyed else (lambda _: None), on_sent)


def _progress(total: int, name: str) -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, unit="B", unit_scale=True, desc=name, file=sys.stderr)
