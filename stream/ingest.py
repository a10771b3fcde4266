"""
Raw-topic ingest: decode provider records, dead-letter the bad ones, forward events in packs.

Why not a Faust agent: Faust hands an agent one record at a time through its consumer thread,
conductor and stream (about ten event-loop callbacks per record); measured here that capped the
worker near 1,800 events/s against 31,000 for a plain aiokafka pass-through. This service reads
the raw topics with aiokafka in batches and forwards, per batch, one record per destination
partition of the re-keying topic ("a pack"), so the Faust agent downstream sees a few records
per batch instead of one per event.

Delivery stays at-least-once: a batch's packs and dead letters are flushed before its offsets
are committed, so a crash replays records, which the member join turns into no-ops.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import defaultdict
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from stream import records
from stream.config import Settings
from stream.metrics import Metrics
from stream.resolver import DeadLetter, events_of

log = logging.getLogger("statusflow")


def partition_of(member_id: bytes, partitions: int) -> int:
    """
    Return the partition a member's events, table entry and published state all live on.

    CRC-32 rather than Kafka's murmur2: any stable hash keeps a member on one partition, and
    aiokafka's murmur2 is pure Python (measured 6.7 us a call, the largest single cost here).
    """
    return zlib.crc32(member_id) % partitions


class RawIngest(Service):
    """The consumer of the raw topics (envelopes and SendGrid bodies)."""

    def __init__(self, settings: Settings, metrics: Metrics, **kwargs: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self.formats = {settings.events_topic: "envelope", settings.sendgrid_topic: "sendgrid"}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Connect: one consumer group per app for the raw topics, one idempotent producer."""
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            *self.formats,
            bootstrap_servers=s.broker,
            group_id=f"{s.app_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout * 1000),
            heartbeat_interval_ms=int(s.heartbeat_interval * 1000),
            rebalance_timeout_ms=int(s.rebalance_timeout * 1000),
            max_poll_records=s.batch_size,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.broker, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=512 * 1024
        )
        await self.producer.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Leave the group cleanly (no commit: whatever was not flushed is replayed)."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started in on_start
        while not self.should_stop:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
            if batch:
                await self.forward([record for partition in batch.values() for record in partition])
                await self.commit()

    async def commit(self) -> None:
        """
        Commit what was read, after it was forwarded; a rebalance in between is not an error.

        When the group rebalanced since the batch was read (the membership or generation changed,
        or the partitions are gone), the commit fails: the new owner reads those records again,
        which the member join makes no-ops. The consumer rejoins by itself on its next poll.
        """
        assert self.consumer is not None  # noqa: S101 - started in on_start
        try:
            await self.consumer.commit()
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("ingest: commit skipped, the group rebalanced; the new owner replays: %r", exc)

    async def forward(self, batch: list[Any]) -> None:
        """Decode a batch of raw records; produce one pack per destination partition and the dead letters."""
        assert self.producer is not None  # noqa: S101 - started in on_start
        s = self.settings
        packs: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for record in batch:
            for item in events_of(record.value, self.formats[record.topic]):
                if isinstance(item, DeadLetter):
                    self.metrics.dead_letter(item.error)
                    origin = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
                    letter = DeadLetter(item.raw, item.error, origin).document()
                    await self.producer.send(s.dlq_topic, orjson.dumps(letter), key=record.key)
                else:
                    packs[partition_of(item.member_id.encode(), s.partitions)].append(records.event_fields(item))
        await self.send_batches(s.by_member_topic, [(p, None, orjson.dumps(events)) for p, events in packs.items()])
        await self.producer.flush()

    async def send_batches(self, topic: str, items: list[tuple[int, bytes | None, bytes]]) -> None:
        """
        Produce (partition, key, value) records as one Kafka batch per partition.

        One ``send`` per record costs ~30 us of Python in aiokafka; appending to a batch a tenth
        of that. Delivery is confirmed by the next ``flush``.
        """
        assert self.producer is not None  # noqa: S101 - started in on_start
        producer = self.producer
        batches: dict[int, Any] = {}
        for partition, key, value in items:
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it, start another
                await producer.send_batch(batch, topic, partition=partition)
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            await producer.send_batch(batch, topic, partition=partition)

    async def flush(self) -> None:
        """Wait until everything produced so far is acknowledged by the broker."""
        assert self.producer is not None  # noqa: S101 - started in on_start
        await self.producer.flush()

    async def report_lag(self) -> None:
        """Set statusflow_consumer_lag for the raw partitions this worker holds."""
        assert self.consumer is not None  # noqa: S101 - started in on_start
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue  # not known until the partition's first fetch
            try:
                position = await self.consumer.position(tp)
            except IllegalStateError:  # revoked since assignment() was read
                continue
            if position is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
        await asyncio.sleep(0)
