"""
The ACLs a worker's principal needs, and no more: the README's list, and what tests grant.

A worker reads the raw topics, its re-keying topic, its table's changelog (at recovery) and
Faust's leader topic; writes packs, changelog records, states and dead letters; commits offsets
for its two consumer groups (Faust's and the raw ingest's). It creates topics only where it is
allowed to; on clusters where applications may not, ``statusflow topics create`` (run by an
admin) makes them all beforehand and the CREATE lines are not needed.
"""

from __future__ import annotations

from typing import NamedTuple

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
    acls += [Acl("Read", "group", name) for name in (s.app_id, f"{s.app_id}-ingest", f"{s.app_id}-correlate")]
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


async def missing_access(settings: Settings) -> list[str]:
    """
    Return what the worker's principal cannot see or use, one phrase each; empty if nothing is missing.

    Checked before the worker starts, so a missing ACL is one clear line rather than an agent
    crashing later. Run after the topics were created where they could be: a topic the
    principal may neither read nor write is then missing from the topics it can list, and a
    group it may not read has no coordinator for it.
    """
    from aiokafka.errors import GroupAuthorizationFailedError, KafkaError  # noqa: PLC0415

    from stream.kafka.topics import admin_client  # noqa: PLC0415

    needs = worker_acls(settings, creates_topics=False)
    admin = admin_client(settings)
    await admin.start()
    try:
        visible = set(await admin.list_topics())
        denied = {acl.name for acl in needs if acl.kind == "topic" and acl.name not in visible}
        for acl in needs:
            if acl.kind == "group":
                try:
                    await admin.find_coordinator(acl.name)
                except GroupAuthorizationFailedError:
                    denied.add(acl.name)
                except KafkaError:  # no coordinator yet (a fresh cluster): not ours to judge here
                    continue
    finally:
        await admin.close()
    return [f"{acl.operation} on {acl.kind} {acl.name}" for acl in needs if acl.name in denied]
