"""``statusflow worker``: run the streaming worker (a Faust worker) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import errno
import logging
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from stream.config import SASL_MECHANISMS, SECURITY_PROTOCOLS, Settings


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("worker", help="run the streaming worker on Kafka")
    add_settings_arguments(parser)
    parser.add_argument("--web-port", type=int, help="port of the worker's web server and /metrics (default 6066)")
    parser.add_argument(
        "--store",
        help="member states: rocksdb:// (the default: on disk under --data-dir, a restart replays only what "
        "changed since) or memory:// (replays the whole changelog at every start)",
    )
    parser.add_argument("--log-level", help="warning (default), info, debug")
    parser.set_defaults(run=run)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags every Kafka-facing command shares."""
    parser.add_argument("--broker", help="Kafka bootstrap server (default 127.0.0.1:9092, or STATUSFLOW_BROKER)")
    parser.add_argument("--partitions", type=int, help="partitions of topics the worker creates (default 8)")
    parser.add_argument(
        "--replication-factor",
        type=int,
        help="replication of topics the worker creates (default 1, or STATUSFLOW_REPLICATION_FACTOR)",
    )
    parser.add_argument(
        "--min-insync-replicas",
        type=int,
        help="their min.insync.replicas (default: replication factor - 1, at least 1)",
    )
    security = parser.add_argument_group("Kafka security (or the STATUSFLOW_* variables of the same names)")
    security.add_argument("--security-protocol", choices=SECURITY_PROTOCOLS, help="default PLAINTEXT")
    security.add_argument("--sasl-mechanism", choices=SASL_MECHANISMS, help="default PLAIN")
    security.add_argument("--sasl-username")
    # No --sasl-password: a flag would show in `ps`. STATUSFLOW_SASL_PASSWORD or a file instead.
    security.add_argument(
        "--sasl-password-file", help="file holding the SASL password (STATUSFLOW_SASL_PASSWORD also works)"
    )
    security.add_argument(
        "--ssl-cafile", help="PEM CA bundle that signed the brokers' certificates (default: the system's)"
    )
    security.add_argument("--ssl-certfile", help="PEM client certificate, for mutual TLS (with --ssl-keyfile)")
    security.add_argument("--ssl-keyfile", help="PEM private key of --ssl-certfile")


_FLAGS = (
    "broker",
    "app_id",
    "partitions",
    "web_port",
    "store",
    "log_level",
    "replication_factor",
    "min_insync_replicas",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password_file",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
)


def settings_from(args: argparse.Namespace) -> Settings:
    """Build Settings from the environment and whichever flags this command has."""
    return Settings.from_env(**{name: getattr(args, name, None) for name in _FLAGS})


def _worker_class() -> Any:
    import faust  # noqa: PLC0415 - see run()

    from stream.logs import rate_limit, say_always  # noqa: PLC0415

    class Worker(faust.Worker):
        """Faust's worker: repeated log lines held back (an outage logs each error once per 10 s), a bounded stop."""

        stop_timeout = 25.0

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            rate_limit(logger)
            say_always("statusflow.ready", logger)

        async def on_stop(self) -> None:
            # With the broker gone, Faust's consumer thread waits 60 s for a group coordinator it
            # cannot reach before the rest may stop (measured: 62 s after SIGTERM), beyond a
            # Kubernetes pod's 30 s grace. A thread, since the loop itself may be what is stuck.
            timer = threading.Timer(self.stop_timeout, _stop_now, args=(self.stop_timeout,))
            timer.daemon = True
            timer.start()
            await super().on_stop()

    return Worker


def _stop_now(seconds: float) -> None:
    # As a kill -9 would: every hop commits only what it wrote, so what was not committed is
    # replayed by the next owner, and replays change nothing.
    print(
        f"statusflow worker: not stopped {seconds:g} s after the stop began (STATUSFLOW_STOP_TIMEOUT; "
        "is the broker reachable?): exiting now, the next owner replays what was not committed",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)


# glibc's mallopt parameter for the most malloc arenas (malloc.h).
_M_ARENA_MAX = -8
# Two arenas: the event loop's thread and RocksDB's flush and compaction threads share them.
MALLOC_ARENAS = 2


def limit_malloc_arenas(environ: Mapping[str, str] = os.environ, load: Callable[[str], Any] = ctypes.CDLL) -> bool:
    """
    Cap glibc's malloc arenas at ``MALLOC_ARENAS``, unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives each thread that contends for memory an arena of its own (up to 8 per core), and
    an arena keeps what was freed in it. RocksDB's background threads then leave freed memory in
    their own arenas: measured at 1,000,000 members (``make bench-state``, ``rocksdb://``), RSS at
    the end was 346 MiB with glibc's default and 283 MiB with two arenas, at the same throughput.
    Set before the worker starts any thread of its own; a no-op where libc is not glibc.

    Returns:
        Whether the cap was set.

    """
    if "MALLOC_ARENA_MAX" in environ:  # the operator chose; glibc read it at start
        return False
    try:
        libc = load("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False


def run(args: argparse.Namespace) -> int:
    """Create the topics, then hand the process to Faust's worker (which handles signals)."""
    limit_malloc_arenas()
    # faust is heavy; `statusflow resolve` should not pay for it, hence the imports in here
    from aiokafka.errors import KafkaError, TopicAuthorizationFailedError  # noqa: PLC0415

    from stream.kafka.acls import access_problem  # noqa: PLC0415
    from stream.kafka.app import create_app  # noqa: PLC0415
    from stream.kafka.client import KafkaAccessError, probe  # noqa: PLC0415
    from stream.kafka.store import store_kind  # noqa: PLC0415
    from stream.kafka.topics import ensure_topics, partition_mismatches  # noqa: PLC0415

    _Worker = _worker_class()  # noqa: N806 - a class
    settings = settings_from(args)
    try:
        store_kind(settings.store)
    except ValueError as error:
        print(f"statusflow worker: {error}", file=sys.stderr)
        return 2
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Faust's worker runs on this same loop afterwards
    try:
        # Faust would find a taken port only after joining the group, as a 48-line traceback.
        check_web_port(settings)
        loop.run_until_complete(probe(settings))
        try:
            created = loop.run_until_complete(ensure_topics(settings))
        except TopicAuthorizationFailedError:
            created = []  # topics it can neither see nor create: missing, or hidden by ACLs; said below
        # Every protocol: a PLAINTEXT cluster with an authorizer judges its clients as User:ANONYMOUS.
        problem = loop.run_until_complete(access_problem(settings))
        if problem:
            raise KafkaAccessError(problem)  # noqa: TRY301 - one report for every startup failure, below
    except (WebPortError, KafkaAccessError, KafkaError) as error:
        # Port taken, wrong password, untrusted certificate, missing ACL: retrying will not mend
        # it. One line and exit 1 (the traceback only at --log-level debug).
        if settings.log_level == "debug":
            traceback.print_exc()
        print(f"statusflow worker: cannot start: {error}", file=sys.stderr)
        return 1
    logging.getLogger("statusflow").info("created topics: %s", created)
    mismatches = loop.run_until_complete(partition_mismatches(settings))
    if mismatches:
        # Starting anyway would crash the resolver on its first write to a missing partition.
        for mismatch in mismatches:
            print(f"statusflow worker: {mismatch}", file=sys.stderr)
        return 2
    worker = _Worker(create_app(settings), loglevel=settings.log_level, quiet=True, loop=loop)
    worker.stop_timeout = settings.stop_timeout
    worker.spinner = None  # its terminal escape codes end up in every log file otherwise
    worker.execute_from_commandline()  # returns only via SystemExit
    return 0


class WebPortError(Exception):
    """The worker's web server cannot bind its address; the message names the port and the setting."""


def check_web_port(settings: Settings) -> None:
    """
    Bind the web server's address as aiohttp will, and release it at once.

    With SO_REUSEADDR as aiohttp sets it, so a port a previous worker left in TIME_WAIT counts
    as free. Another process can still take the port in the seconds before Faust binds it; that
    rare case ends the worker with Faust's traceback.

    Raises:
        WebPortError: the port is taken, privileged, or the host does not resolve or is not ours.

    """
    host, port = settings.web_host, settings.web_port
    where = f"web port {port} on {host}"
    fix = "(STATUSFLOW_WEB_PORT or --web-port choose the port, STATUSFLOW_WEB_HOST the address)"
    if not 1 <= port <= 65535:  # Faust refuses 0 too, but with a traceback after the Kafka checks
        raise WebPortError(f"{where}: not a TCP port (1-65535) {fix}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise WebPortError(f"{where}: the address does not resolve: {error.strerror} {fix}") from error
    for family, kind, protocol, _, address in infos:
        with socket.socket(family, kind, protocol) as candidate:
            candidate.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                candidate.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    reason = "is already in use by another process"
                elif error.errno == errno.EACCES:
                    reason = "needs privileges (a port below 1024)"
                else:
                    reason = f"cannot be bound: {error.strerror or error}"
                raise WebPortError(f"{where} {reason} {fix}") from error
