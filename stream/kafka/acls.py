"""
The ACLs a worker's principal needs, and no more: the README's list, and what tests grant.

A worker reads the raw topics, its re-keying topic, its member states' changelog (at restore) and
Faust's leader topic; writes packs, changelog records, states and dead letters; commits offsets
for its consumer groups (Faust's, and its own: ingest, resolve, correlate). It creates topics only where it is
allowed to; on clusters where applications may not, ``statusflow topics create`` (run by an
admin) makes them all beforehand and the CREATE lines are not needed.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from stream.config import Settings
from stream.providers.registry import FORMATS


class Acl(NamedTuple):
    """One allow rule: ``operation`` on the resource ``kind``/``name`` (literal names)."""

    operation: str
    kind: str
    name: str


def worker_acls(settings: Settings, *, creates_topics: bool = True) -> list[Acl]:
    """Return every ACL a worker with ``settings`` needs, grouped by operation."""
    s = settings
    raw = [s.raw_topic(name) for name in FORMATS]  # one per provider format
    # The dispatch join: dispatch records in, memberless statuses and dispatches re-keyed by message,
    # and the join's own changelog (stream/kafka/correlate.py).
    joins = [s.by_message_topic, s.hold_changelog_topic]
    reads = [*raw, s.dispatches_topic, s.by_member_topic, *joins, s.changelog_topic, s.leader_topic]
    writes = [s.by_member_topic, *joins, s.changelog_topic, s.output_topic, s.dlq_topic]
    every = [
        *raw, s.dispatches_topic, s.by_member_topic, *joins, s.output_topic, s.dlq_topic, s.changelog_topic,
        s.leader_topic,
    ]  # fmt: skip
    acls = [Acl("Read", "topic", name) for name in reads]
    acls += [Acl("Write", "topic", name) for name in writes]
    acls += [
        Acl("Read", "group", name)
        for name in (s.app_id, f"{s.app_id}-ingest", f"{s.app_id}-resolve", f"{s.app_id}-correlate")
    ]
    if creates_topics:
        acls += [Acl("Create", "topic", name) for name in every]
    return acls


def acl_commands(acls: list[Acl], principal: str) -> list[list[str]]:
    """Return kafka-acls argument lists adding ``acls`` for ``principal``: one per operation and kind."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for acl in acls:
        grouped.setdefault((acl.operation, acl.kind), []).append(acl.name)
    return [
        ["--add", "--allow-principal", principal, "--operation", operation]
        + [arg for name in names for arg in (f"--{kind}", name)]
        for (operation, kind), names in grouped.items()
    ]


def principal(settings: Settings) -> str:
    """
    Return the principal the brokers see for ``settings``, as ACLs name it (``User:...``).

    SASL: the user name. Mutual TLS: the client certificate's subject, as Kafka's default
    principal builder writes it (RFC 2253, e.g. ``User:CN=statusflow``). Otherwise anonymous.
    """
    if settings.uses_sasl:
        return f"User:{settings.sasl_username}"
    if settings.uses_tls and settings.ssl_certfile:
        subject = certificate_subject(settings.ssl_certfile)
        return f"User:{subject}" if subject else f"the subject of STATUSFLOW_SSL_CERTFILE={settings.ssl_certfile}"
    return "User:ANONYMOUS"


# RFC 2253's keywords for the attributes Python's decoder names; others are left out of the name.
_RDN_KEYWORDS = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def certificate_subject(path: str) -> str | None:
    """Return a PEM certificate's subject in RFC 2253 order (most specific first); None if unreadable."""
    import ssl  # noqa: PLC0415

    # The stdlib's own decoder (what getpeercert uses), reached through its test hook: the only
    # certificate parser in the standard library. Missing on some Python builds: then None.
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    try:
        subject = decode(path)["subject"] if decode else None
    except (OSError, ssl.SSLError, KeyError):
        return None
    if not subject:
        return None
    parts = [f"{_RDN_KEYWORDS[key]}={value}" for rdn in reversed(subject) for key, value in rdn if key in _RDN_KEYWORDS]
    return ",".join(parts) or None


async def access_problem(settings: Settings) -> str | None:
    """
    Return one line saying what the worker's principal lacks or what is missing; None if nothing.

    Checked before the worker starts, so a missing ACL is one clear line rather than a service
    crashing at its first write. Run after the topics were created where they could be.
    """
    lacking, absent = await missing_access(settings)
    if not (lacking or absent):
        return None
    parts = []
    if lacking:
        parts.append(f"principal {principal(settings)} lacks {'; '.join(lacking)} (README, 'Least privilege')")
    if absent:
        parts.append(f"topics missing: {', '.join(absent)} (statusflow topics create makes them)")
    return "; and ".join(parts)


async def missing_access(settings: Settings) -> tuple[list[str], list[str]]:
    """
    Return the ACLs the worker's principal lacks (``"Write on topic t"``) and the topics that do not exist.

    Asks the brokers which operations the principal may perform on each topic (Metadata) and
    group (DescribeGroups), so a Write missing on a topic the principal may read (the re-key
    topic, the changelog) is found too, not only a topic hidden from it altogether. A broker too
    old to answer (before Kafka 2.3) is checked only for the topics it hides.
    """
    from aiokafka.client import AIOKafkaClient  # noqa: PLC0415

    from stream.kafka.client import kafka_client_options  # noqa: PLC0415

    needs = worker_acls(settings, creates_topics=False)
    topics = list(dict.fromkeys(acl.name for acl in needs if acl.kind == "topic"))
    groups = [acl.name for acl in needs if acl.kind == "group"]
    client = AIOKafkaClient(**kafka_client_options(settings), request_timeout_ms=15_000)
    await client.bootstrap()
    try:
        topic_held, absent = await _topic_operations(client, topics)
        group_held = await _group_operations(client, groups)
    finally:
        await client.close()
    held = {("topic", name): ops for name, ops in topic_held.items()}
    held.update({("group", name): ops for name, ops in group_held.items()})
    lacking = [
        f"{acl.operation} on {acl.kind} {acl.name}"
        for acl in needs
        if (ops := held.get((acl.kind, acl.name))) is not None and acl.operation not in ops
    ]
    return lacking, absent


# Kafka's error codes for the answers the checks tell apart.
_UNKNOWN_TOPIC = 3
_TOPIC_DENIED = 29
_GROUP_DENIED = 30


async def _topic_operations(client: Any, topics: list[str]) -> tuple[dict[str, frozenset[str]], list[str]]:
    # Per topic: the operations held, none for a topic hidden from the principal (no Describe,
    # which Read and Write imply); a topic left out was not judged. And the topics absent.
    held: dict[str, frozenset[str]] = {}
    asked = topics
    # A topic created a moment ago (by ensure_topics, or by an admin just before the start) can
    # be unknown to the broker's metadata for a while under load: ask again before calling it absent.
    deadline = asyncio.get_running_loop().time() + _ABSENT_WAIT
    while True:
        answered = await _ask_topic_operations(client, asked)
        if answered is None:  # a broker without Metadata v8: what it hides is all we learn
            visible = set((await client.fetch_all_metadata()).topics())
            return {name: frozenset() for name in topics if name not in visible}, []
        more, absent = answered
        held |= more
        if not absent or asyncio.get_running_loop().time() > deadline:
            return held, absent
        asked = absent
        await asyncio.sleep(0.25)


# How long a topic the broker does not know may take to appear before it counts as absent.
_ABSENT_WAIT = 5.0


async def _ask_topic_operations(client: Any, topics: list[str]) -> tuple[dict[str, frozenset[str]], list[str]] | None:
    from stream.kafka.protocol import TopicOperationsRequest, operations  # noqa: PLC0415

    try:
        response = await client.send(client.get_random_node(), TopicOperationsRequest(topics))
    except NotImplementedError:
        return None
    held: dict[str, frozenset[str]] = {}
    absent = []
    for error_code, name, _, _, field in response.topics:
        if error_code == _TOPIC_DENIED:
            held[name] = frozenset()
        elif error_code == _UNKNOWN_TOPIC:
            absent.append(name)
        elif (ops := operations(field)) is not None:
            held[name] = ops
    return held, absent


async def _group_operations(client: Any, groups: list[str]) -> dict[str, frozenset[str]]:
    # A group the principal may not even describe has no coordinator for it; one it may describe
    # says what else it may do. No coordinator yet (a fresh cluster) leaves the group unjudged.
    from aiokafka.errors import GroupAuthorizationFailedError, KafkaError  # noqa: PLC0415

    from stream.kafka.protocol import GroupOperationsRequest, operations  # noqa: PLC0415

    held: dict[str, frozenset[str]] = {}
    for group in groups:
        try:
            coordinator = await client.coordinator_lookup(0, group)  # 0: a consumer group
            response = await client.send(coordinator, GroupOperationsRequest([group]))
        except GroupAuthorizationFailedError:
            held[group] = frozenset()
            continue
        except (KafkaError, NotImplementedError):
            continue
        for error_code, name, *_, field in response.groups:
            if error_code == _GROUP_DENIED:
                held[name] = frozenset()
            elif error_code == 0 and (ops := operations(field)) is not None:
                held[name] = ops
    return held
