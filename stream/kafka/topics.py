"""
The worker's Kafka topics, with deliberate settings: create them, or check what exists.

Every topic the worker reads or writes is declared here, Faust's changelog and leader topics
included, so a cluster where applications may not create topics can get them all from
``statusflow topics create``, and ``statusflow topics check`` can say what differs.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError, for_code

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.providers.registry import FORMATS

# The resolved state is a table of the latest value per member: compaction keeps exactly that.
_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
# A member's changelog record grows with its events (the ids it has seen); most are a few hundred
# bytes, compressed beyond 64 KiB (records.encode_state). The limit leaves room for members with
# hundreds of thousands of events; a state beyond it is refused and its events dead-lettered.
CHANGELOG_MAX_BYTES = 8 * 1024 * 1024
# Kafka compacts only closed segments, and the defaults (1 GiB, 7 days) keep a changelog of a few
# hundred MB in its active segment for ever: about one record per state change, all read again by
# every restore that starts from the beginning. Small segments let the cleaner bring it to about
# one record per member.
CHANGELOG_CONFIGS = {
    "max.message.bytes": str(CHANGELOG_MAX_BYTES),
    "segment.bytes": str(16 * 1024 * 1024),
    "segment.ms": str(3600 * 1000),
    "min.cleanable.dirty.ratio": "0.2",
}
# A raw record is one webhook body as the provider sent it; SendGrid alone batches bodies of
# several megabytes. Kafka's 1 MB default would refuse them at the door.
RAW_MAX_BYTES = 8 * 1024 * 1024
_RAW = {"max.message.bytes": str(RAW_MAX_BYTES)}
# Dead letters wait for a person to read them; keep them a month.
_DLQ = {"retention.ms": str(30 * 24 * 3600 * 1000)}
# What `topics check` compares besides partitions and replication.
CHECKED_CONFIGS = ("cleanup.policy", "min.insync.replicas", "max.message.bytes", "retention.ms")


def durability(settings: Settings) -> dict[str, str]:
    """Return the min.insync.replicas every topic the worker creates gets."""
    return {"min.insync.replicas": str(settings.min_insync)}


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Return the topics the worker reads and writes, with partitions, replication and configs."""
    n, rf, isr = settings.partitions, settings.replication_factor, durability(settings)
    changelog = {"cleanup.policy": "compact", **CHANGELOG_CONFIGS}  # as Faust makes it for a table
    return [
        *[NewTopic(settings.raw_topic(name), n, rf, topic_configs={**_RAW, **isr}) for name in FORMATS],
        NewTopic(settings.by_member_topic, n, rf, topic_configs=isr),
        NewTopic(settings.dispatches_topic, n, rf, topic_configs=isr),
        NewTopic(settings.by_message_topic, n, rf, topic_configs=isr),
        NewTopic(settings.hold_changelog_topic, n, rf, topic_configs={**changelog, **isr}),
        NewTopic(settings.output_topic, n, rf, topic_configs={**_COMPACTED, **isr}),
        NewTopic(settings.dlq_topic, n, rf, topic_configs={**_DLQ, **isr}),
        NewTopic(settings.changelog_topic, n, rf, topic_configs={**changelog, **isr}),
        NewTopic(settings.leader_topic, 1, rf, topic_configs=isr),
    ]


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    """Return an admin client for ``settings`` (not started)."""
    return AIOKafkaAdminClient(**kafka_client_options(settings), request_timeout_ms=15_000)


async def ensure_topics(settings: Settings) -> list[str]:
    """
    Create whichever of the worker's topics do not exist yet.

    Returns:
        The names of the topics this call created.

    """
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(missing)
    finally:
        await admin.close()
    # aiokafka returns each topic's error code rather than raising: a topic made meanwhile by
    # another worker (or not yet in the metadata we read) is fine, anything else is not.
    created, refused = [], []
    for name, code, message, *_ in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code == TopicAuthorizationFailedError.errno:
            refused.append(name)
        elif code != TopicAlreadyExistsError.errno:
            error = for_code(code)
            raise error(f"cannot create topic {name}: {message or error.__name__}")
    if refused:
        raise TopicAuthorizationFailedError(f"not allowed to create or see topics: {', '.join(refused)}")
    return created


async def check_topics(settings: Settings) -> list[str]:
    """
    Compare the topics that exist with what the worker needs.

    Returns:
        One line per difference (missing topic, partitions, replication, a config); none if all match.

    """
    specs = topic_specs(settings)
    admin = admin_client(settings)
    await admin.start()
    try:
        # Only topics that exist are described: a metadata request naming a missing topic would
        # have a broker with auto.create.topics.enable create it, with the broker's defaults.
        existing = set(await admin.list_topics())
        present = [s for s in specs if s.name in existing]
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in present])} if present else {}
        configs = await _configs(admin, [s.name for s in present])
    finally:
        await admin.close()
    differences = [f"{s.name}: missing" for s in specs if s not in present]
    for spec in present:
        partitions = described[spec.name]["partitions"]
        if not partitions:  # just created: this broker lists it before it knows its partitions
            differences.append(f"{spec.name}: missing")
            continue
        replicas = min(len(p["replicas"]) for p in partitions)
        wanted: dict[str, object] = {"partitions": spec.num_partitions, "replication": spec.replication_factor}
        found: dict[str, object] = {"partitions": len(partitions), "replication": replicas}
        wanted |= {k: v for k, v in spec.topic_configs.items() if k in CHECKED_CONFIGS}
        wanted.setdefault("cleanup.policy", "delete")
        found |= {k: configs[spec.name].get(k) for k in wanted if k in CHECKED_CONFIGS}
        differences += [
            f"{spec.name}: {key} is {found[key]}, the worker needs {value}"
            for key, value in wanted.items()
            if str(found[key]) != str(value)
        ]
    return differences


async def _configs(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, dict[str, str]]:
    if not topics:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
    result: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for _error, _message, _type, name, entries in response.resources:
            result[name] = {entry[0]: entry[1] for entry in entries}
    return result


async def partition_mismatches(settings: Settings) -> list[str]:
    """
    Describe each topic the worker writes to by explicit partition that has too few partitions.

    The worker writes a member's pack and state to partition ``crc32(member_id) % partitions`` of
    the re-keying and output topics, so each needs ``settings.partitions`` partitions. A topic
    the broker auto-created (``auto.create.topics.enable``, ``num.partitions=1``) because some
    client asked for it before the worker created it, has one: every write to another partition
    then fails (aiokafka: ``AssertionError('Unrecognized partition')``), batch after batch.

    Returns:
        One sentence per mismatched topic; empty when all is well.

    """
    topics = [settings.by_member_topic, settings.output_topic, settings.by_message_topic, settings.hold_changelog_topic]
    admin = admin_client(settings)
    await admin.start()
    try:
        # A topic created a moment ago may not be described yet (leader not available): ask again
        # rather than take the error for "all is well".
        for _ in range(20):
            described = await admin.describe_topics(topics)
            if not any(topic["error_code"] for topic in described):
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    found = {topic["topic"]: len(topic["partitions"]) for topic in described if not topic["error_code"]}
    return [
        f"topic {name} has {found[name]} partition(s), the worker needs {settings.partitions} "
        f"(STATUSFLOW_PARTITIONS); it was probably auto-created by the broker before the worker "
        f"created it: recreate it with {settings.partitions} partitions, or add partitions while it is empty"
        for name in topics
        if found.get(name, settings.partitions) < settings.partitions
    ]
