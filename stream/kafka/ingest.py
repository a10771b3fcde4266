"""
Raw-topic ingest: decode provider records, dead-letter the bad ones, forward events in packs.

Why not a Faust agent: Faust hands an agent one record at a time through its consumer thread,
conductor and stream (about ten event-loop callbacks per record); measured here that capped the
worker near 1,800 events/s against 31,000 for a plain aiokafka pass-through. This service reads
the raw topics with aiokafka in batches and forwards, per batch, one record per destination
partition of the re-keying topic ("a pack"), so ``MemberResolver`` downstream sees a few records
per batch instead of one per event.

Delivery stays at-least-once: a batch's packs and dead letters are flushed before its offsets
are committed, so a crash replays records, which the member join turns into no-ops.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalStateError
from mode import Service

from stream import records
from stream.config import Settings
from stream.dispatches import DISPATCH, Unclaimed, decode_dispatch, known_from_headers, route
from stream.domain.correlate import Dispatch, Held
from stream.domain.errors import BadEventError
from stream.domain.model import Event
from stream.kafka.client import commit_or_replay, group_consumer_options, kafka_client_options
from stream.kafka.topics import CHANGELOG_MAX_BYTES
from stream.kafka.writer import Record, Writer
from stream.metrics import Metrics
from stream.resolver import FORMATS, DeadLetter, items_of

log = logging.getLogger(__name__)

# A Kafka batch, and so a pack of events, stays well under the broker's 1 MB default message size.
BATCH_BYTES = 512 * 1024
PACK_BYTES = 256 * 1024


class DeliveryError(Exception):
    """Records could not be written for a reason retrying cannot mend; the input is not committed."""


def cut_packs(events: list[tuple[Any, ...]], limit: int = PACK_BYTES) -> list[bytes]:
    """
    Return ``events`` as encoded packs, each at most ``limit`` bytes (one event alone excepted).

    A 1.5 MB SendGrid body for one member makes 15,000 events bound for one partition: one pack
    of them would be refused by Kafka. Halving keeps the common case (one small pack) one encode.
    """
    encoded = orjson.dumps(events)
    if len(encoded) <= limit or len(events) == 1:
        return [encoded]
    half = len(events) // 2
    return cut_packs(events[:half], limit) + cut_packs(events[half:], limit)


log = logging.getLogger("statusflow")


def partition_of(member_id: bytes, partitions: int) -> int:
    """
    Return the partition a member's events, stored state and published state all live on.

    CRC-32 rather than Kafka's murmur2: any stable hash keeps a member on one partition, and
    aiokafka's murmur2 is pure Python (measured 6.7 us a call, the largest single cost here).
    """
    return zlib.crc32(member_id) % partitions


class RawIngest(Service):
    """The consumer of the raw topics (envelopes, and each provider format's webhook bodies)."""

    def __init__(self, settings: Settings, metrics: Metrics, **kwargs: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self.formats = {settings.raw_topic(name): name for name in FORMATS}
        self.formats[settings.dispatches_topic] = DISPATCH  # dispatch records: the join's other side
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.writer: Writer | None = None
        # The resolver's changelog and output writes (``write_states``) get a producer of their own: aiokafka has
        # one request in flight per broker per producer, so sharing one made each hop wait for the other's.
        self.state_producer: AIOKafkaProducer | None = None
        self.state_writer: Writer | None = None
        self._committed_at = 0.0
        self._uncommitted = False  # forwarded since the last commit
        self.offsets: AIOKafkaConsumer | None = None
        self._reported: set[type[BaseException]] = set()
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Connect: one consumer group per app for the raw topics, one idempotent producer."""
        s = self.settings
        self.consumer = AIOKafkaConsumer(*self.formats, **group_consumer_options(s, "ingest"))
        self.producer, self.state_producer = (
            AIOKafkaProducer(
                **kafka_client_options(s),
                acks="all",
                enable_idempotence=True,
                max_batch_size=BATCH_BYTES,
                # Changelog records of large states may exceed the 1 MB default (topics.CHANGELOG_MAX_BYTES).
                max_request_size=CHANGELOG_MAX_BYTES + BATCH_BYTES,
            )
            for _ in range(2)
        )
        # No group and no fetching (its partitions stay paused): it only answers end offsets, so
        # no rebalance can hold it up and asking it never waits on Faust's consumer thread.
        self.offsets = AIOKafkaConsumer(**kafka_client_options(s), enable_auto_commit=False)
        await self.producer.start()
        await self.state_producer.start()
        self.writer = Writer(self.producer, stopping=lambda: self.should_stop)
        self.state_writer = Writer(self.state_producer, stopping=lambda: self.should_stop)
        await self.offsets.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Leave the group cleanly (no commit: whatever was not flushed is replayed)."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.offsets is not None:
            await self.offsets.stop()
        for producer in (self.producer, self.state_producer):
            if producer is not None:
                await producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started in on_start
        while not self.should_stop:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
            if batch:
                await self.forward([record for partition in batch.values() for record in partition])
                self._uncommitted = True
                await self.commit()
            elif self._uncommitted:  # idle: commit the last batches now, so the group shows no lag
                await self.commit(now=True)

    async def commit(self, *, now: bool = False) -> None:
        """
        Commit what was read, after it was forwarded (``client.commit_or_replay``).

        At most once per ``commit_interval`` unless ``now``: a commit is a broker round trip, and one
        per batch delayed the next batch's events by it. What is forwarded but not yet committed is
        read again after a crash or a rebalance, and the joins make that a no-op.
        """
        assert self.consumer is not None  # noqa: S101 - started in on_start
        clock = asyncio.get_running_loop().time()
        if now or clock - self._committed_at >= self.settings.commit_interval:
            self._committed_at = clock
            self._uncommitted = False
            await commit_or_replay(self.consumer, "ingest")

    async def forward(self, batch: list[Any]) -> None:
        """
        Decode a batch of raw records; write its packs and dead letters, every one acknowledged.

        Returns only when all of them landed, so the caller may then commit the batch's offsets.
        """
        s = self.settings
        packs: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        by_message: dict[int, list[Any]] = defaultdict(list)  # memberless statuses and dispatches
        letters: list[Record] = []
        for record in batch:
            for item in self._items(record):
                if isinstance(item, DeadLetter):
                    self.metrics.dead_letter(item.error)
                    letter = item.at(topic=record.topic, partition=record.partition, offset=record.offset)
                    letters.append((record.partition % s.partitions, record.key, orjson.dumps(letter.document())))
                elif isinstance(item, Dispatch | Held):
                    partition, fields = route(item, s.partitions)
                    by_message[partition].append(fields)
                else:
                    packs[partition_of(item.member_id.encode(), s.partitions)].append(records.event_fields(item))
        written = [(p, None, pack) for p, events in packs.items() for pack in cut_packs(events)]
        await self._write_all(s.by_member_topic, written)
        await self._write_all(
            s.by_message_topic, [(p, None, pack) for p, items in by_message.items() for pack in cut_packs(items)]
        )
        await self._write_all(s.dlq_topic, letters)

    def _items(self, record: Any) -> list[Event | DeadLetter | Dispatch | Held[Unclaimed]]:
        # One record's events and dead letters. Whatever goes wrong in decoding it, even a bug of
        # ours, stays with that record: it is dead-lettered with the exception's words, and the
        # rest of the batch goes on.
        try:
            record_format = self.formats[record.topic]
            if record_format == DISPATCH:
                try:
                    return [decode_dispatch(record.value)]
                except BadEventError as error:
                    return [DeadLetter(record.value, error)]
            origin = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            return [
                replace(item, payload=item.payload.at(**origin)) if isinstance(item, Held) else item
                for item in items_of(record.value, record_format, known_from_headers(record.headers))
            ]
        except Exception as error:
            if type(error) not in self._reported:
                self._reported.add(type(error))
                log.exception("unexpected error decoding %s[%d]@%d", record.topic, record.partition, record.offset)
            reason = BadEventError(
                "internal_error", "", f"decoding failed unexpectedly: {type(error).__name__}: {error}"
            )
            return [DeadLetter(record.value, reason)]

    async def _write_all(self, topic: str, items: Sequence[Record]) -> None:
        # Packs are cut under the topic's limit and dead letters are bounded, so a permanent
        # failure here (not authorised, topic deleted) is not one more retry can mend: stop
        # before anything is committed, and say why.
        failures = await self.write(topic, items)
        if failures:
            error = failures[0][1]
            raise DeliveryError(f"{len(failures)} records could not be written to {topic}: {error!r}")

    async def write(self, topic: str, items: Sequence[Record]) -> list[tuple[Record, BaseException]]:
        """Write records to a topic with this service's producer; see ``Writer.write``."""
        assert self.writer is not None  # noqa: S101 - started in on_start
        return await self.writer.write(topic, items)

    async def write_states(self, topic: str, items: Sequence[Record]) -> list[tuple[Record, BaseException]]:
        """Write member states (changelog, output) with their own producer; see ``Writer.write``."""
        assert self.state_writer is not None  # noqa: S101 - started in on_start
        return await self.state_writer.write(topic, items)

    def acked_ends(self) -> dict[tuple[str, int], int]:
        """Return, per (topic, partition) of the states written, the offset after the last record acknowledged."""
        assert self.state_writer is not None  # noqa: S101 - started in on_start
        return self.state_writer.acked_ends

    async def end_offsets(self, topic: str, partitions: set[int]) -> dict[int, int]:
        """Return the current end offset of each of ``topic``'s ``partitions``."""
        assert self.offsets is not None  # noqa: S101 - started in on_start
        wanted = {TopicPartition(topic, p) for p in partitions}
        held = self.offsets.assignment()
        if not wanted <= held:  # assigned, so its metadata follows the topic; paused, so it fetches nothing
            self.offsets.assign(list(held | wanted))
            self.offsets.pause(*self.offsets.assignment())
        ends = await self.offsets.end_offsets(list(wanted))
        return {tp.partition: offset for tp, offset in ends.items()}

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
