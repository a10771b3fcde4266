"""
The consumer of the re-key topic: each batch of packs it reads is joined, persisted and published.

Why not a Faust agent (it was one until issue 11): Faust's consumer thread, conductor and stream
delivered the packs in small steps, and ``take_events`` then waited out its window before every
batch. Measured at 2,000 events/s on a quiet machine: 27 ms from a pack's write to Faust's fetch
of it, 53 ms of window between batches, p50 119 ms produce-to-output; under load the agent fell
seconds behind while a plain aiokafka consumer of the same topic, in the same run, read each pack
16 ms after it was written. This service reads with aiokafka in batches, as ``RawIngest`` does,
and hands a batch on as soon as ``getmany`` returns it.

Delivery stays at-least-once: a batch's offsets are committed only after its states were persisted
and published (``handle`` returned), and when partitions leave this worker the batch in hand is
finished and committed first (``on_partitions_revoked`` waits for it), so the next owner starts
after it or replays it, which the member join makes a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from mode import Service

from stream.config import Settings
from stream.kafka.client import commit_or_replay, group_consumer_options

log = logging.getLogger("statusflow")

Handle = Callable[[list[Any]], Awaitable[None]]
"""What to do with a batch of the re-key topic's records (aiokafka ``ConsumerRecord``s)."""
Assigned = Callable[[set[int]], Awaitable[None]]
"""What to do when the group gives this worker a new set of the re-key topic's partitions."""


class MemberResolver(Service):
    """
    Read the re-key topic in batches in the group ``<app id>-resolve``; hand each to ``handle``.

    It offers what ``health.readiness`` reads of a group member: ``started``, ``should_stop``,
    ``rebalancing``, ``rebalancing_count`` and ``consumer.assignment()``.
    """

    def __init__(
        self,
        settings: Settings,
        handle: Handle,
        assigned: Assigned,
        fatal: Callable[[str, BaseException], None],
        **kwargs: Any,
    ) -> None:
        self.settings = settings
        self.handle = handle
        self.assigned = assigned
        self.fatal = fatal
        self.topic = settings.by_member_topic
        self.consumer: AIOKafkaConsumer | None = None
        self.rebalancing = False
        self.rebalancing_count = 0
        self._batch = asyncio.Lock()  # held while a batch is handled and committed
        self._committed_at = 0.0
        self._uncommitted = False  # handled since the last commit
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Join the group; assignments come through ``_Listener``."""
        self.consumer = AIOKafkaConsumer(**group_consumer_options(self.settings, "resolve"))
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Leave the group (what was handled but not committed is replayed by the next owner)."""
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started in on_start
        try:
            while not self.should_stop:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
                if batch:
                    async with self._batch:
                        await self.handle([record for records in batch.values() for record in records])
                        self._uncommitted = True
                        await self._commit()
                elif self._uncommitted:  # idle: commit the last batches now, so the group shows no lag
                    async with self._batch:
                        await self._commit(now=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # End the process before anything else runs: a graceful stop would commit the
            # offsets of the batch that failed. A restart replays it (README, "Delivery guarantee").
            self.fatal("resolve_members", exc)
            raise

    async def _commit(self, *, now: bool = False) -> None:
        # At most once per commit_interval: a commit is a broker round trip before the next batch.
        assert self.consumer is not None  # noqa: S101 - started in on_start
        clock = asyncio.get_running_loop().time()
        if now or clock - self._committed_at >= self.settings.commit_interval:
            self._committed_at = clock
            self._uncommitted = False
            await commit_or_replay(self.consumer, "resolve")

    async def revoked(self) -> None:
        """Partitions are leaving: finish the batch in hand and commit what was handled."""
        self.rebalancing = True
        async with self._batch:
            await self._commit(now=True)

    async def reassigned(self, partitions: set[TopicPartition]) -> None:
        """Restore and hold exactly these partitions: the group settled on them."""
        await self.assigned({tp.partition for tp in partitions if tp.topic == self.topic})
        self.rebalancing_count += 1
        self.rebalancing = False


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc] # aiokafka is untyped
    def __init__(self, resolver: MemberResolver) -> None:
        self.resolver = resolver

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:  # noqa: ARG002 - all go at once
        await self.resolver.revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.resolver.reassigned(assigned)
