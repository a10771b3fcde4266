"""
Checked writes to Kafka: every record's delivery awaited, retriable failures retried, none dropped.

aiokafka's ``send_batch`` hands back a future per batch, and ``producer.flush()`` returns whether or
not those futures failed; a worker that only flushes before it commits can commit past a write
that never landed. ``Writer.write`` awaits each batch's future and returns only when every record
is acknowledged, or failed permanently (too large for the topic, not authorised, ...). A caller
commits its input only after that, and decides what a permanent failure means for its records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)

log = logging.getLogger(__name__)

Record = tuple[int, bytes | None, bytes]
"""A record to write: (partition, key, value)."""
Tombstone = tuple[int, bytes, None]
"""A record that deletes its key from a compacted topic."""
_R = TypeVar("_R", Record, Record | Tombstone)

_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)
_AWAY = (KafkaTimeoutError, KafkaConnectionError, TimeoutError, ConnectionError)
_LOG_EVERY = 10.0  # seconds between two log lines about the same failing topic


class WriteAbortedError(Exception):
    """The writer was asked to stop while records were still unacknowledged; nothing may be committed."""


def is_too_large(error: BaseException) -> bool:
    """Whether a failed write was refused for its size (so splitting or shrinking it may help)."""
    return isinstance(error, _TOO_LARGE)


def _retriable(error: BaseException) -> bool:
    # A record the broker refused for its size stays too large however often it is sent.
    if is_too_large(error):
        return False
    # aiokafka fails a batch that waited out its delivery timeout with KafkaTimeoutError, which it
    # does not mark retriable; for us it is the broker being away, so it is.
    return bool(getattr(error, "retriable", False)) or isinstance(error, _AWAY)


class Writer:
    """
    Produce records as one Kafka batch per partition and wait for every acknowledgement.

    Args:
        producer: a started producer (idempotent, acks=all: a retried batch is not written twice).
        stopping: tells whether the process is shutting down, which ends retrying.
        backoff: the first pause before a retry, doubled up to ``max_backoff``.

    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        stopping: Callable[[], bool] = lambda: False,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.producer = producer
        self.stopping = stopping
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._logged: dict[str, float] = {}
        # (topic, partition) -> the offset after the last record acknowledged there: a disk state
        # store records how far the changelog it wrote is reflected in it.
        self.acked_ends: dict[tuple[str, int], int] = {}

    async def write(self, topic: str, records: Sequence[_R]) -> list[tuple[_R, BaseException]]:
        """
        Write ``records`` to ``topic``; return once each is acknowledged or failed for good.

        A batch the broker refuses as too large is written again record by record, so one oversize
        record does not sink its neighbours. Retriable failures (leader changes, timeouts, a broker
        away) are retried with backoff for as long as it takes.

        Returns:
            The records that failed permanently, each with its error; empty when all landed.

        Raises:
            WriteAbortedError: the process is stopping and some records are not acknowledged.

        """
        pending = list(records)
        permanent: list[tuple[_R, BaseException]] = []
        pause = self.backoff
        while pending:
            failed = await self._write_once(topic, pending)
            pending = []
            for batch, error in failed:
                if len(batch) > 1 and is_too_large(error):
                    for record in batch:  # alone, each may fit
                        permanent.extend(await self.write(topic, [record]))
                elif _retriable(error):
                    pending.extend(batch)
                else:
                    permanent.extend((record, error) for record in batch)
            if pending:
                if self.stopping():
                    raise WriteAbortedError(f"stopping with {len(pending)} records to {topic} unacknowledged")
                self._log_retry(topic, len(pending), failed[0][1])
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_backoff)
        return permanent

    async def _write_once(self, topic: str, records: list[_R]) -> list[tuple[list[_R], BaseException]]:
        producer = self.producer
        by_partition: dict[int, list[_R]] = defaultdict(list)
        for record in records:
            by_partition[record[0]].append(record)
        sent: list[tuple[int, list[_R], Any]] = []
        failed: list[tuple[list[_R], BaseException]] = []
        for partition, items in by_partition.items():
            if not await self._knows(topic, partition):
                failed.append((items, PartitionNotKnownError(topic, partition)))
                continue
            batch, in_batch = producer.create_batch(), list[_R]()
            for record in items:
                if batch.append(key=record[1], value=record[2], timestamp=None) is None:  # full: ship it
                    sent.append((partition, in_batch, await self._send(batch, topic, partition)))
                    batch, in_batch = producer.create_batch(), []
                    batch.append(key=record[1], value=record[2], timestamp=None)  # the first always fits
                in_batch.append(record)
            sent.append((partition, in_batch, await self._send(batch, topic, partition)))
        for partition, in_batch, delivery in sent:
            try:
                landed = await delivery
            except (TimeoutError, KafkaError, OSError) as error:
                failed.append((in_batch, error))
                continue
            offset = getattr(landed, "offset", None)  # the batch's base offset
            if isinstance(offset, int) and offset >= 0:
                end = offset + len(in_batch)
                if end > self.acked_ends.get((topic, partition), -1):
                    self.acked_ends[topic, partition] = end
        return failed

    async def _send(self, batch: Any, topic: str, partition: int) -> Any:
        # A closed batch is sent at once: it is whole, and the producer's linger (there for its
        # other callers' single records) would only add to every write's latency.
        batch.close()
        try:
            return await self.producer.send_batch(batch, topic, partition=partition)
        except (TimeoutError, KafkaError, OSError) as error:
            failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failure.set_exception(error)
            return failure

    async def _knows(self, topic: str, partition: int) -> bool:
        # send_batch asserts that the producer's metadata has the partition ("Unrecognized
        # partition"): on a topic created a moment ago it may not yet. partitions_for also makes
        # the producer track the topic, so the refresh below asks for it (a bare refresh only asks
        # for topics already tracked, and a topic never sent to would stay unknown for ever).
        try:
            if partition in await self.producer.partitions_for(topic):
                return True
            await self.producer.client.force_metadata_update()
        except KafkaError:
            return False
        return partition in (self.producer.client.cluster.partitions_for_topic(topic) or ())

    def _log_retry(self, topic: str, count: int, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged.get(topic, -_LOG_EVERY) >= _LOG_EVERY:
            self._logged[topic] = now
            log.warning("writing %d records to %s failed (%s: %s); retrying", count, topic, type(error).__name__, error)


class PartitionNotKnownError(KafkaError):  # type: ignore[misc] # aiokafka is untyped
    """The producer's metadata does not (yet) know the partition: a new topic, or a broker away."""

    retriable = True

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__(f"no metadata yet for partition {partition} of {topic}")
