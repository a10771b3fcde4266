"""The resolver's batch handler: persist before publish, replays republish, oversize states refused."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from stream import records
from stream.codec import decode_event
from stream.config import Settings
from stream.kafka.app import Handlers
from stream.kafka.writer import Record
from stream.partitions import MemoryPartition

CHANGELOG = "statusflow-member-states-changelog"
SETTINGS = Settings.from_env({})


class FakeIngest:
    """Records every write in order; refuses the changelog records of members in ``too_large``."""

    def __init__(self, end_offsets: dict[int, int], too_large: frozenset[bytes] = frozenset()) -> None:
        self.ends = end_offsets
        self.too_large = too_large
        self.writes: list[tuple[str, list[Record]]] = []

    async def end_offsets(self, topic: str, partitions: set[int]) -> dict[int, int]:  # noqa: ARG002
        """Return the end offsets the test set."""
        return {p: self.ends[p] for p in partitions}

    def acked_ends(self) -> dict[tuple[str, int], int]:
        """Return the offsets after the changelog records written, per partition."""
        ends: dict[tuple[str, int], int] = {}
        for topic, items in self.writes:
            for partition, _, _ in items:
                ends[topic, partition] = ends.get((topic, partition), 0) + 1
        return ends

    async def write_states(self, topic: str, items: Sequence[Record]) -> list[tuple[Record, BaseException]]:
        """Record a write of states, as ``write``."""
        return await self.write(topic, items)

    async def write(self, topic: str, items: Sequence[Record]) -> list[tuple[Record, BaseException]]:
        """Record a write; fail the oversize changelog records."""
        self.writes.append((topic, list(items)))
        if topic != CHANGELOG:
            return []
        return [(record, MessageSizeTooLargeError()) for record in items if record[1] in self.too_large]


def handlers(ingest: FakeIngest) -> Handlers:
    """Return Handlers over memory partition stores (held, nothing to restore) and the fake ingest."""
    watchdog = SimpleNamespace(fatal=lambda *_: None)
    handler = Handlers(SimpleNamespace(), SETTINGS, CollectorRegistry(), watchdog)  # type: ignore[arg-type]
    handler.states.held = {p: MemoryPartition() for p in range(SETTINGS.partitions)}
    handler.ingest = ingest  # type: ignore[assignment]
    return handler


def pack(partition: int, offset: int, *events: tuple[str, str, str]) -> Any:
    """Return a pack as the resolver reads it: events of (member, event id, SMPP status) at an offset."""
    fields = [
        records.event_fields(
            decode_event(
                orjson.dumps(
                    {"member_id": m, "event_id": e, "source": "smpp", "status": s, "occurred_at": 1_735_689_600}
                )
            )
        )
        for m, e, s in events
    ]
    return SimpleNamespace(value=orjson.dumps(fields), partition=partition, offset=offset, topic="t")


def published(ingest: FakeIngest, topic: str) -> list[dict[str, Any]]:
    """Return the documents written to ``topic``, in order."""
    return [orjson.loads(value) for written, items in ingest.writes if written == topic for _, _, value in items]


async def test_a_state_is_persisted_before_it_is_published() -> None:
    """The changelog write comes first, so nothing is ever published that a restart could forget."""
    ingest = FakeIngest({0: 0})

    await handlers(ingest).resolve([pack(0, 5, ("m1", "e1", "DELIVRD"))])

    assert [CHANGELOG, SETTINGS.output_topic] == [topic for topic, _ in ingest.writes]


async def test_a_duplicate_in_a_pack_the_previous_owner_may_have_handled_republishes_the_state() -> None:
    """Below the end offset at assignment a duplicate republishes (closing the persisted-not-published gap)."""
    ingest = FakeIngest({0: 10})
    handler = handlers(ingest)
    await handler.resolve([pack(0, 3, ("m1", "e1", "DELIVRD"))])

    await handler.resolve([pack(0, 4, ("m1", "e1", "DELIVRD"))])
    await handler.resolve([pack(0, 12, ("m1", "e1", "DELIVRD"))])

    assert [1, 1] == [document["events"] for document in published(ingest, SETTINGS.output_topic)]
    assert 1 == len(published(ingest, CHANGELOG))


async def test_a_state_the_changelog_refuses_as_too_large_is_reverted_and_its_events_dead_lettered() -> None:
    """The member keeps its earlier state, nothing of it is published, and each of its new events gets a letter."""
    ingest = FakeIngest({0: 0}, too_large=frozenset({b"big"}))
    handler = handlers(ingest)

    await handler.resolve([pack(0, 1, ("big", "e1", "DELIVRD"), ("small", "e2", "DELIVRD"), ("big", "e3", "UNDELIV"))])

    letters = published(ingest, SETTINGS.dlq_topic)
    assert ["small"] == [document["member_id"] for document in published(ingest, SETTINGS.output_topic)]
    assert handler.states.held[0].get(b"big") is None
    assert [("too_large", 1), ("too_large", 1)] == [(d["error"]["reason"], d["offset"]) for d in letters]
