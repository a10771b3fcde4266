"""``statusflow topics create|check|acls``: the worker's topics (and ACLs) for clusters run by others."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from typing import Any

from stream.cli.worker import add_settings_arguments, settings_from


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("topics", help="create or check the worker's topics; print its ACLs")
    parser.add_argument(
        "action",
        choices=("create", "check", "acls"),
        help="create: make missing topics with their configs; check: say what differs, exit 1 if anything does; "
        "acls: print the kafka-acls commands granting a worker's principal what it needs",
    )
    parser.add_argument("--app-id", help="the worker's STATUSFLOW_APP_ID (default statusflow)")
    parser.add_argument("--principal", default="User:statusflow", help="for acls (default User:statusflow)")
    parser.add_argument("--no-create", action="store_true", help="for acls: the worker will not create topics")
    add_settings_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Create, check, or print ACLs; exit 1 if check finds a difference."""
    settings = settings_from(args)
    if args.action == "acls":
        from stream.kafka.acls import acl_commands, worker_acls  # noqa: PLC0415

        for command in acl_commands(worker_acls(settings, creates_topics=not args.no_create), args.principal):
            print(shlex.join(["kafka-acls.sh", "--bootstrap-server", settings.broker, *command]))
        return 0
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    from stream.kafka.client import KafkaAccessError, probe  # noqa: PLC0415
    from stream.kafka.topics import check_topics, ensure_topics  # noqa: PLC0415

    try:
        asyncio.run(probe(settings))
        if args.action == "create":
            created = asyncio.run(ensure_topics(settings))
            print(f"statusflow topics: created {len(created)}: {', '.join(created) or '-'}", file=sys.stderr)
            return 0
        differences = asyncio.run(check_topics(settings))
    except (KafkaAccessError, KafkaError) as error:
        print(f"statusflow topics: {error}", file=sys.stderr)
        return 1
    for line in differences:
        print(line)
    print(f"statusflow topics: {len(differences)} difference(s)", file=sys.stderr)
    return 1 if differences else 0
