"""Create the worker's Kafka topics with deliberate settings (Faust would not, for external topics)."""

from __future__ import annotations

from contextlib import suppress

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.config import Settings
from stream.kafka_client import kafka_client_options

# The resolved state is a table of the latest value per member: compaction keeps exactly that.
_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
# A member's changelog record grows with its events (the ids it has seen); most are a few hundred
# bytes, compressed beyond 64 KiB (records.encode_state). The limit leaves room for members with
# hundreds of thousands of events; a state beyond it is refused and its events dead-lettered.
CHANGELOG_MAX_BYTES = 8 * 1024 * 1024
CHANGELOG_CONFIGS = {"max.message.bytes": str(CHANGELOG_MAX_BYTES)}
# A raw record is one webhook body as the provider sent it; SendGrid alone batches bodies of
# several megabytes. Kafka's 1 MB default would refuse them at the door.
RAW_MAX_BYTES = 8 * 1024 * 1024
_RAW = {"max.message.bytes": str(RAW_MAX_BYTES)}
# Dead letters wait for a person to read them; keep them a month.
_DLQ = {"retention.ms": str(30 * 24 * 3600 * 1000)}


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Return the topics the worker reads and writes, with partitions and configs."""
    n = settings.partitions
    return [
        NewTopic(settings.events_topic, n, 1, topic_configs=_RAW),
        NewTopic(settings.sendgrid_topic, n, 1, topic_configs=_RAW),
        NewTopic(settings.by_member_topic, n, 1),
        NewTopic(settings.output_topic, n, 1, topic_configs=_COMPACTED),
        NewTopic(settings.dlq_topic, n, 1, topic_configs=_DLQ),
    ]


async def ensure_topics(settings: Settings) -> list[str]:
    """
    Create whichever of the worker's topics do not exist yet.

    Returns:
        The names of the topics this call created.

    """
    admin = AIOKafkaAdminClient(**kafka_client_options(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another worker created them meanwhile
                await admin.create_topics(missing)
        return [spec.name for spec in missing]
    finally:
        await admin.close()
