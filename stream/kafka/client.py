"""
What every Kafka client of the process needs to reach the cluster: protocol, TLS, SASL.

One place turns ``Settings`` into aiokafka keyword arguments (``kafka_client_options``) and into
Faust's ``broker_credentials`` (``faust_credentials``), so the worker's Faust app, its raw ingest
consumer and producer, topic creation, ``statusflow produce``, the demo, the benchmarks and the
test fixtures all connect the same way. ``probe`` opens one connection before anything else and
turns what goes wrong (refused, TLS, SASL) into one sentence.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from functools import cache
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from stream.config import ConfigError, Settings

log = logging.getLogger("statusflow")


class KafkaAccessError(Exception):
    """The cluster cannot be reached or refuses us; the message says which and why, in one line."""


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Return the aiokafka keyword arguments (consumer, producer, admin) for ``settings``."""
    options: dict[str, Any] = {"bootstrap_servers": settings.broker, "security_protocol": settings.security_protocol}
    if settings.uses_tls:
        options["ssl_context"] = ssl_context(settings)
    if settings.uses_sasl:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.reveal()
    return options


def group_consumer_options(settings: Settings, group: str) -> dict[str, Any]:
    """
    Return the keyword arguments of one of the worker's own group consumers (``<app id>-<group>``).

    Offsets are committed by hand, after the writes they derive from; the group timeouts are the
    worker's (README, "Worker settings"), and static membership gives each group its own instance id.
    """
    instance = settings.instance_id
    return {
        **kafka_client_options(settings),
        "group_id": f"{settings.app_id}-{group}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(settings.session_timeout * 1000),
        "heartbeat_interval_ms": int(settings.heartbeat_interval * 1000),
        "rebalance_timeout_ms": int(settings.rebalance_timeout * 1000),
        "max_poll_records": settings.batch_size,
        "group_instance_id": (instance if group == "ingest" else f"{instance}-{group}") if instance else None,
    }


async def commit_or_replay(consumer: Any, who: str) -> None:
    """
    Commit what a group consumer read, after what it derived was written; a rebalance in between is not an error.

    When the group rebalanced since the batch was read (the membership or generation changed, or the
    partitions are gone), the commit fails: the new owner reads those records again, which the joins
    make no-ops. The consumer rejoins by itself on its next poll.
    """
    try:
        await consumer.commit()
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("%s: commit skipped, the group rebalanced; the new owner replays: %r", who, exc)


def faust_credentials(settings: Settings) -> Any:
    """Return Faust's ``broker_credentials`` for ``settings`` (None for PLAINTEXT)."""
    import faust  # noqa: PLC0415 - only the worker needs faust; `statusflow produce` should not load it

    if settings.uses_sasl:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.reveal(),
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context(settings) if settings.uses_tls else None,
        )
    if settings.uses_tls:
        return faust.SSLCredentials(ssl_context(settings))
    return None


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """
    Return the TLS context: the system's CAs or ``STATUSFLOW_SSL_CAFILE``, and a client certificate if given.

    Raises:
        ConfigError: a CA, certificate or key file that does not load.

    """
    return _ssl_context(settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile)


@cache
def _ssl_context(cafile: str, certfile: str, keyfile: str) -> ssl.SSLContext:
    # One context per set of files: every client of the process shares it (and its session cache).
    try:
        context = ssl.create_default_context(cafile=cafile or None)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"STATUSFLOW_SSL_CAFILE={cafile!r} is not a readable PEM CA bundle: {error}") from None
    if certfile:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"STATUSFLOW_SSL_CERTFILE={certfile!r} / STATUSFLOW_SSL_KEYFILE={keyfile!r} do not load: {error}"
            ) from None
    return context


async def probe(settings: Settings, seconds: float = 8.0) -> None:
    """
    Connect to the first reachable bootstrap server and authenticate, or say in one line why not.

    aiokafka itself only reports "Unable to bootstrap" and logs the cause; a worker that cannot
    log in should say so and stop, not retry a wrong password for ever.

    Raises:
        KafkaAccessError: no bootstrap server accepted the connection; the last cause, in words.

    """
    options = kafka_client_options(settings)
    servers = options.pop("bootstrap_servers").split(",")
    reason = "no bootstrap server given"
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(seconds):
                connection = await create_conn(host, int(port), request_timeout_ms=int(seconds * 1000), **options)
        except (OSError, KafkaError, TimeoutError) as error:
            reason = describe(error, settings, server)
            continue
        connection.close()
        return
    raise KafkaAccessError(reason)


def describe(error: BaseException, settings: Settings, server: str) -> str:  # noqa: PLR0911 - one return per cause
    """Return one line naming why a connection to ``server`` failed, without the password."""
    s = settings
    # aiokafka reports a TLS alert after the handshake (TLS 1.3 checks the client's certificate
    # then) as "Connection closed", with the alert as its cause.
    error = _tls_cause(error) or error
    if isinstance(error, ssl.SSLError) and "CERTIFICATE_REQUIRED" in str(error.reason):
        return (
            f"TLS to {server} refused: the broker requires a client certificate "
            "(mutual TLS: set STATUSFLOW_SSL_CERTFILE and STATUSFLOW_SSL_KEYFILE)"
        )
    if isinstance(error, ssl.SSLError) and "ALERT" in str(error.reason) and s.ssl_certfile:
        return (
            f"TLS to {server} refused the client certificate in STATUSFLOW_SSL_CERTFILE={s.ssl_certfile} "
            f"({error.reason}: is it signed by a CA the broker trusts?)"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        trusted = f"the CA in STATUSFLOW_SSL_CAFILE={s.ssl_cafile}" if s.ssl_cafile else "the system's CAs"
        return f"TLS to {server} failed: its certificate is not trusted by {trusted} ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS to {server} failed: {error.reason or error} (is STATUSFLOW_SECURITY_PROTOCOL={s.security_protocol} right?)"
    name = type(error).__name__
    if "Sasl" in name or "Authentication" in name:
        return (
            f"SASL authentication as {s.sasl_username!r} ({s.sasl_mechanism}) to {server} failed: "
            f"{_first_line(error)} (check STATUSFLOW_SASL_USERNAME and the password)"
        )
    if isinstance(error, ConnectionRefusedError):
        return f"broker {server} refused the connection (nothing listening there?)"
    if isinstance(error, TimeoutError):
        return f"broker {server} did not answer within the timeout (wrong port, or TLS against a plain listener?)"
    if isinstance(error, OSError):
        return f"broker {server} unreachable: {error.strerror or error}"
    return f"broker {server}: {name}: {_first_line(error)}"


def _tls_cause(error: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
