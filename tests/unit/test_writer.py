"""Checked writes: every delivery awaited, retriable failures retried, oversize batches split, nothing dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, TopicAuthorizationFailedError

from stream.kafka.writer import Record, WriteAbortedError, Writer

Verdict = Callable[[str, int, list[bytes]], BaseException | None]


class FakeBatch:
    """A batch builder that holds up to ``capacity`` bytes (the first record always fits)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: list[bytes] = []
        self.closed = False

    def close(self) -> None:
        """Close the batch: aiokafka then sends it without waiting out the producer's linger."""
        self.closed = True

    def append(self, *, key: bytes | None, value: bytes, timestamp: None) -> object | None:  # noqa: ARG002
        """Add a record, or return None when full."""
        if self.values and sum(map(len, self.values)) + len(value) > self.capacity:
            return None
        self.values.append(value)
        return object()


class FakeCluster:
    """Metadata that learns a topic's partitions only after ``learn_after`` refreshes."""

    def __init__(self, learn_after: int) -> None:
        self.learn_after = learn_after

    def partitions_for_topic(self, topic: str) -> set[int] | None:  # noqa: ARG002
        """Return the known partitions, if any."""
        return {0, 1, 2} if self.learn_after <= 0 else None


class FakeClient:
    """The producer's client: metadata and its refresh."""

    def __init__(self, learn_after: int) -> None:
        self.cluster = FakeCluster(learn_after)

    async def force_metadata_update(self) -> bool:
        """Refresh: one step closer to knowing the topic."""
        self.cluster.learn_after -= 1
        return True


class FakeProducer:
    """Records every batch sent; ``verdict`` decides each batch's delivery (None: acknowledged)."""

    def __init__(self, verdict: Verdict, capacity: int = 100, learn_after: int = 0) -> None:
        self.verdict = verdict
        self.capacity = capacity
        self.client = FakeClient(learn_after)
        self.sent: list[tuple[str, int, list[bytes]]] = []
        self.landed: list[bytes] = []

    async def partitions_for(self, topic: str) -> set[int]:
        """Return the partitions the metadata knows now (none for a topic it has not learnt yet)."""
        return self.client.cluster.partitions_for_topic(topic) or set()

    def create_batch(self) -> FakeBatch:
        """Return an empty batch."""
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        """Queue a batch; its future says how its delivery went."""
        self.sent.append((topic, partition, batch.values))
        self.all_closed = getattr(self, "all_closed", True) and batch.closed
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        error = self.verdict(topic, partition, batch.values)
        if error is None:
            self.landed.extend(batch.values)
            future.set_result(None)
        else:
            future.set_exception(error)
        return future


def records(*values: bytes, partition: int = 0) -> list[Record]:
    """Return records for one partition."""
    return [(partition, None, value) for value in values]


def write(producer: FakeProducer, items: list[Record], stopping: Callable[[], bool] = lambda: False) -> Any:
    """Run one write with no backoff."""
    writer = Writer(producer, stopping=stopping, backoff=0, max_backoff=0)
    return asyncio.run(writer.write("t", items))


def test_every_record_lands_in_batches_per_partition_and_nothing_fails() -> None:
    """Records of two partitions go out as batches under the size, and all are acknowledged."""
    producer = FakeProducer(lambda *_: None, capacity=10)
    items = records(b"aaaa", b"bbbb", b"cccc") + records(b"dd", partition=1)

    failed = write(producer, items)

    assert [] == failed
    assert sorted(value for _, _, value in items) == sorted(producer.landed)
    assert [("t", 0, [b"aaaa", b"bbbb"]), ("t", 0, [b"cccc"]), ("t", 1, [b"dd"])] == producer.sent
    assert producer.all_closed  # each sent whole, at once: no linger on any write


def test_a_retriable_failure_is_retried_until_the_records_land() -> None:
    """A broker away (timeouts) twice, then back: the same records land, none dropped, none reported failed."""
    failures = [KafkaTimeoutError(), KafkaTimeoutError()]
    producer = FakeProducer(lambda *_: failures.pop() if failures else None)

    failed = write(producer, records(b"x", b"y"))

    assert [] == failed
    assert [b"x", b"y"] == producer.landed
    assert 3 == len(producer.sent)


def test_a_batch_refused_as_too_large_is_split_and_only_the_oversize_record_fails() -> None:
    """One 1 MB record must not sink the small records it shared a batch with."""

    def verdict(_topic: str, _partition: int, values: list[bytes]) -> BaseException | None:
        return MessageSizeTooLargeError() if sum(map(len, values)) > 50 else None

    producer = FakeProducer(verdict, capacity=1000)

    failed = write(producer, records(b"small", b"L" * 60, b"tiny"))

    assert [b"small", b"tiny"] == producer.landed
    assert [(0, None, b"L" * 60)] == [record for record, _ in failed]
    assert isinstance(failed[0][1], MessageSizeTooLargeError)


def test_a_permanent_failure_is_returned_not_retried() -> None:
    """Not authorised: retrying cannot help, so the caller hears of it at once."""
    producer = FakeProducer(lambda *_: TopicAuthorizationFailedError())

    failed = write(producer, records(b"x"))

    assert 1 == len(producer.sent)
    assert [(0, None, b"x")] == [record for record, _ in failed]


def test_a_partition_the_metadata_does_not_know_yet_is_waited_for() -> None:
    """A topic created a moment ago: ask for metadata again instead of failing 'Unrecognized partition'."""
    producer = FakeProducer(lambda *_: None, learn_after=3)

    failed = write(producer, records(b"x"))

    assert [] == failed
    assert [b"x"] == producer.landed


def test_stopping_while_records_are_unacknowledged_raises_so_nothing_is_committed() -> None:
    """A shutdown during a broker outage ends the retries with an error, never with a silent return."""
    producer = FakeProducer(lambda *_: KafkaTimeoutError())

    with pytest.raises(WriteAbortedError):
        write(producer, records(b"x"), stopping=lambda: True)
