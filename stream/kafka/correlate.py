"""
The dispatch join, live: memberless statuses and dispatch records meet by (provider, message id).

A third hop beside the two of ``app.py``::

    message-dispatches ─┐
    message-events.<f> ─┴─► RawIngest ─► <app>-events-by-message ─► Correlation ─► <app>-events-by-member
                                          (packs, per partition)     │  hold: <app>-dispatch-hold-changelog
                                                                     └─► message-events.dlq (unmatched_message)

``RawIngest`` forwards each status that names no member (but names its message id) and each
dispatch record to partition ``crc32("provider:message_id") % partitions`` of the re-keying topic
(``route``), so a message's statuses and its dispatch meet in one partition. ``Correlation`` owns
those partitions through a consumer group of its own (``<app>-correlate``), keeps one
``Correlator`` per partition (``stream/domain/correlate.py``: the same join as offline), and per batch:

1. forwards the released statuses as events of their member, in packs, to the by-member topic
   (the member join downstream makes a replayed one a no-op);
2. dead-letters what the partition's event-time watermark expired (``unmatched_message``), a
   conflicting dispatch, a message holding too many statuses;
3. writes each changed slot to its compacted changelog (a tombstone for a slot let go), through
   the checked writer, partition for partition with the re-keying topic;
4. commits its input offsets.

Outputs before the state that says they were produced: a crash between replays the batch from
the older state, and replays make duplicates, never losses. A partition's slots are read back from
its changelog partition when it is assigned (before any of its records is applied) and dropped when
it is revoked. Not Faust's table: a plain dict per partition, restored in one batched read, outside
Faust's recovery (and its known stall, README "Known issue").
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import defaultdict
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from mode import Service

from stream import records
from stream.config import Settings
from stream.dispatches import (
    Unclaimed,
    claimed_event,
    decode_slot,
    dispatch_conflict,
    dispatch_fields,
    encode_slot,
    item_of,
    key_bytes,
    key_of_bytes,
    unmatched_error,
)
from stream.domain.correlate import Correlator, Dispatch, Held, Key, Slot
from stream.domain.errors import BadEventError
from stream.domain.model import Event
from stream.kafka.client import commit_or_replay, group_consumer_options, kafka_client_options
from stream.kafka.ingest import DeliveryError, cut_packs
from stream.kafka.topics import CHANGELOG_MAX_BYTES
from stream.kafka.writer import Record, Tombstone
from stream.metrics import Metrics
from stream.providers.registry import PROVIDERS
from stream.resolver import DeadLetter

log = logging.getLogger("statusflow")

# A slot (one changelog record) beyond this drops its waiting statuses: well under the changelog's
# limit, so a message's statuses can never make a record the topic refuses.
SLOT_LIMIT = CHANGELOG_MAX_BYTES // 2

# The watermark follows event times, but one record stamped years ahead (a wrong clock, a typo) would
# expire every status waiting in its partition. Times further ahead of this worker's clock than
# this do not move it further.
MAX_AHEAD_MS = 3_600_000


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc] # aiokafka is untyped
    def __init__(self, owner: Correlation) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Keep the slots until the new assignment is known: a partition this worker keeps needs no restore."""

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # A partition that went elsewhere may change there: read it afresh if it ever comes back.
        # The kept ones were nobody else's in between (the group's eager rebalance). The new ones are
        # restored before any record of theirs is fetched: the held gauge is right from the start.
        kept = {tp.partition for tp in assigned}
        for partition in set(self.owner.correlators) - kept:
            del self.owner.correlators[partition]
        for partition in sorted(kept):
            await self.owner.correlator(partition)
        self.owner.report_held()


class Correlation(Service):
    """The consumer of the by-message topic: joins statuses with their dispatches, one correlator per partition."""

    def __init__(self, settings: Settings, metrics: Metrics, writer: Any, **kwargs: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self.writer = writer  # RawIngest: its checked writer and producer
        self.correlators: dict[int, Correlator[Unclaimed]] = {}
        self._restoring = asyncio.Lock()  # one restore at a time on the one restoring consumer
        self.consumer: AIOKafkaConsumer | None = None
        self.restorer: AIOKafkaConsumer | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Join the correlation group; a second consumer, without a group, reads changelogs back."""
        s = self.settings
        self.consumer = AIOKafkaConsumer(**group_consumer_options(s, "correlate"))
        self.consumer.subscribe([s.by_message_topic], listener=_Assignment(self))
        self.restorer = AIOKafkaConsumer(**kafka_client_options(s), enable_auto_commit=False)
        await self.restorer.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Leave the group cleanly (no commit: whatever was not written is replayed)."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.restorer is not None:
            await self.restorer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started in on_start
        while not self.should_stop:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
            if batch:
                await self.forward({tp.partition: packs for tp, packs in batch.items()})
                await commit_or_replay(self.consumer, "correlation")

    async def forward(self, batch: dict[int, list[Any]]) -> None:
        """Join a batch, per partition; write events, dead letters and changed slots, each acknowledged."""
        s = self.settings
        events: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        letters: list[Record] = []
        slots: list[Record | Tombstone] = []
        for partition, packs in batch.items():
            correlator = await self.correlator(partition)
            for pack in packs:
                for fields in orjson.loads(pack.value):
                    self._take(correlator, item_of(fields), events, letters, pack)
            self._expire(correlator, letters)
            for key in correlator.changed:
                record = _slot_record(partition, correlator, key)
                if record[2] is not None and len(record[2]) > SLOT_LIMIT:
                    self._too_large(correlator, key, letters)
                    record = _slot_record(partition, correlator, key)
                slots.append(record)
        packs = [(p, None, pack) for p, items in events.items() for pack in cut_packs(items)]
        for topic, written in ((s.by_member_topic, packs), (s.dlq_topic, letters), (s.hold_changelog_topic, slots)):
            failed = await self.writer.write(topic, written)
            if failed:
                raise DeliveryError(f"{len(failed)} records could not be written to {topic}: {failed[0][1]!r}")
        for correlator in self.correlators.values():
            correlator.changed.clear()
        self.report_held()

    def _too_large(self, correlator: Correlator[Unclaimed], key: Key, letters: list[Record]) -> None:
        # A slot the changelog could not take would stop the worker at every restart: its waiting
        # statuses go to the dead letters instead (its dispatch, small, stays).
        for held in correlator.drop_held(key):
            error = BadEventError(
                "too_large",
                "",
                f"{held.provider} message {held.message_id!r} holds statuses over {SLOT_LIMIT:,} bytes "
                "waiting for its dispatch record",
            )
            letters.append(self._letter(held.payload.raw, error, held.payload.origin))

    def _expire(self, correlator: Correlator[Unclaimed], letters: list[Record]) -> None:
        unmatched, _ = correlator.expire()
        for held in unmatched:
            self.metrics.correlated(held.provider, "unmatched")
            wait = f"no dispatch record came within {self.settings.dispatch_wait:g} s of its time"
            letters.append(self._letter(held.payload.raw, unmatched_error(held, wait), held.payload.origin))

    def _take(
        self,
        correlator: Correlator[Unclaimed],
        item: Dispatch | Held[Unclaimed],
        events: dict[int, list[tuple[Any, ...]]],
        letters: list[Record],
        pack: Any,
    ) -> None:
        correlator.advance(min(item.occurred_at, int(time.time() * 1000) + MAX_AHEAD_MS))
        if isinstance(item, Dispatch):
            self.metrics.dispatches.labels(item.provider).inc()
            released, conflict = correlator.dispatch(item)
            if conflict is not None:
                origin = {"topic": pack.topic, "partition": pack.partition, "offset": pack.offset}
                letters.append(
                    self._letter(
                        orjson.dumps(dispatch_fields(item)), dispatch_conflict(conflict, item.member_id), origin
                    )
                )
        else:
            try:
                joined = correlator.status(item)
            except OverflowError as overflow:
                error = BadEventError("too_large", "", str(overflow))
                letters.append(self._letter(item.payload.raw, error, item.payload.origin))
                return
            released = [] if joined is None else [joined]
        for each in released:
            self.metrics.correlated(each.status.provider, "matched")
            try:
                event: Event = claimed_event(each.status.payload, each.dispatch)
            except BadEventError as error:
                letters.append(self._letter(each.status.payload.raw, error, each.status.payload.origin))
                continue
            member = event.member_id.encode()
            events[zlib.crc32(member) % self.settings.partitions].append(records.event_fields(event))

    def _letter(self, raw: bytes, error: BadEventError, origin: dict[str, Any]) -> Record:
        self.metrics.dead_letter(error)
        letter = DeadLetter(raw, error, origin)
        partition = int(origin.get("partition", 0)) % self.settings.partitions
        return (partition, None, orjson.dumps(letter.document()))

    async def correlator(self, partition: int) -> Correlator[Unclaimed]:
        """Return a partition's correlator, restored from its changelog the first time since it was assigned."""
        async with self._restoring:
            found = self.correlators.get(partition)
            if found is None:
                found = self.correlators[partition] = await self.restore(partition)
            return found

    async def restore(self, partition: int) -> Correlator[Unclaimed]:
        """Read one partition's slots back from its changelog, in batches, up to its end offset now."""
        assert self.restorer is not None  # noqa: S101 - started in on_start
        s = self.settings
        tp = TopicPartition(s.hold_changelog_topic, partition)
        started = time.monotonic()
        slots: dict[Key, Slot[Unclaimed]] = {}
        end = (await self.restorer.end_offsets([tp]))[tp]
        # An empty changelog (the usual case: nothing held) is not assigned at all: a seek and the
        # first position cost the fetcher a round of up to 0.5 s per partition, which made a fresh
        # worker's 8 partitions take ~6 s, and a SIGTERM meanwhile waited for all of it.
        if end > (await self.restorer.beginning_offsets([tp]))[tp]:
            self.restorer.assign([tp])
            await self.restorer.seek_to_beginning(tp)
            while await self.restorer.position(tp) < end:
                fetched = await self.restorer.getmany(tp, timeout_ms=500, max_records=10_000)
                for record in fetched.get(tp, []):
                    if record.key is None:
                        continue
                    key = key_of_bytes(record.key)
                    if record.value is None:
                        slots.pop(key, None)
                    else:
                        slots[key] = decode_slot(key, record.value)
            self.restorer.assign([])
        correlator: Correlator[Unclaimed] = Correlator(
            int(s.dispatch_wait * 1000), int(s.dispatch_retention * 1000), slots
        )
        correlator.reindex()
        log.info(
            "correlation: partition %d restored, %d messages from %d changelog records in %.1f s",
            partition, len(slots), end, time.monotonic() - started,
        )  # fmt: skip
        return correlator

    def report_held(self) -> None:
        """Set statusflow_held_statuses per provider from the partitions this worker holds."""
        totals: dict[str, int] = defaultdict(int)
        for correlator in self.correlators.values():
            for provider, count in correlator.held_by_provider.items():
                totals[provider] += count
        for provider in {*PROVIDERS, *totals}:
            self.metrics.held_statuses.labels(provider).set(totals.get(provider, 0))


def _slot_record(partition: int, correlator: Correlator[Unclaimed], key: Key) -> Record | Tombstone:
    # A slot let go is a tombstone: compaction then forgets the message altogether.
    slot = correlator.slots.get(key)
    if slot is None:
        return (partition, key_bytes(key), None)
    return (partition, key_bytes(key), encode_slot(slot))
