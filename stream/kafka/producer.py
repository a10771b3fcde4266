"""Replay JSON-lines records into a raw topic: the backfill and demo tool's Kafka side."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.topics import RAW_MAX_BYTES


def member_key(line: bytes) -> bytes | None:
    """
    Return the member_id of an envelope line as a record key, or None if it has none.

    Keying raw records by member is not required (the worker re-keys), but it keeps one
    member's records in order on one partition, which makes the stream easier to reason about.
    """
    try:
        member_id = orjson.loads(line).get("member_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(member_id).encode() if member_id not in (None, "") else None


async def produce_lines(
    settings: Settings,
    topic: str,
    lines: Iterable[bytes],
    key_of: Callable[[bytes], bytes | None] = member_key,
    on_sent: Callable[[int], None] = lambda _: None,
) -> int:
    """
    Produce each line as one record (acks=all, idempotent producer); return how many.

    Bad lines are produced too, as they are: dead-lettering them is the worker's job, and the
    tool must be able to replay a real feed byte for byte.
    """
    producer = AIOKafkaProducer(
        **kafka_client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
        max_request_size=RAW_MAX_BYTES,
    )
    await producer.start()
    sent = 0
    try:
        for line in lines:
            await producer.send(topic, value=line, key=key_of(line))
            sent += 1
            on_sent(len(line) + 1)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
