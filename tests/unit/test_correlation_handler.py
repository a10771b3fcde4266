"""The worker's dispatch join per batch: outputs before state, unmatched letters, tombstones, oversize slots."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from stream import records
from stream.config import Settings
from stream.dispatches import decode_dispatch, route
from stream.domain.correlate import Correlator, Held
from stream.kafka.correlate import SLOT_LIMIT, Correlation
from stream.metrics import Metrics
from stream.resolver import items_of

SETTINGS = Settings.from_env({}, dispatch_wait=3600.0)
T0 = 1_735_732_800


class FakeWriter:
    """Records every write in order, and accepts it."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, list[Any]]] = []

    async def write(self, topic: str, items: Sequence[Any]) -> list[Any]:
        """Record a write."""
        self.writes.append((topic, list(items)))
        return []

    def to(self, topic: str) -> list[Any]:
        """Return every record written to ``topic``."""
        return [record for name, items in self.writes if name == topic for record in items]


def callback(sid: str, status: str, at_s: int, padding: int = 0) -> bytes:
    """Return a Twilio status callback naming no member."""
    fields = {"MessageSid": sid, "MessageStatus": status, "received_at": str(T0 + at_s), "ErrorMessage": "x" * padding}
    return urllib.parse.urlencode(fields).encode()


def dispatch(sid: str, member: str, at_s: int = 0) -> bytes:
    """Return a dispatch record."""
    return orjson.dumps({"provider": "twilio", "message_id": sid, "member_id": member, "occurred_at": T0 + at_s})


def packs(*lines: tuple[str, bytes]) -> dict[int, list[Any]]:
    """Route dispatches ('d') and status bodies ('s') as RawIngest would; one pack record each."""
    batch: dict[int, list[Any]] = {}
    for offset, (kind, line) in enumerate(lines):
        items: list[Any] = [decode_dispatch(line)] if kind == "d" else list(items_of(line, "twilio"))
        for item in items:
            assert isinstance(item, Held) or kind == "d", item
            partition, fields = route(item, SETTINGS.partitions)
            pack = SimpleNamespace(value=orjson.dumps([fields]), topic="by-message", partition=partition, offset=offset)
            batch.setdefault(partition, []).append(pack)
    return batch


def correlation() -> tuple[Correlation, FakeWriter, CollectorRegistry]:
    """Return the service over a fake writer, every partition held and nothing to restore."""
    registry = CollectorRegistry()
    writer = FakeWriter()
    service = Correlation(SETTINGS, Metrics(registry), writer)
    service.correlators = {p: Correlator(3_600_000, 7 * 86_400_000) for p in range(SETTINGS.partitions)}
    return service, writer, registry


def test_joined_events_and_letters_are_written_before_the_slots_that_say_so() -> None:
    """Outputs first, then the changelog: a crash in between replays from the older state, never loses."""
    service, writer, _ = correlation()
    asyncio.run(service.forward(packs(("s", callback("SM1", "delivered", 5)))))
    asyncio.run(service.forward(packs(("d", dispatch("SM1", "cm-1")))))

    topics = [name for name, items in writer.writes if items]
    assert topics == [SETTINGS.hold_changelog_topic, SETTINGS.by_member_topic, SETTINGS.hold_changelog_topic]
    (pack,) = writer.to(SETTINGS.by_member_topic)
    (event,) = records.decode_pack(pack[2])
    assert (event.member_id, event.decision.outcome.code) == ("cm-1", 2020)


def test_a_status_past_the_wait_is_dead_lettered_unmatched_and_its_slot_tombstoned() -> None:
    """The partition's watermark passes the status's time plus the wait: a letter, a tombstone, the counter."""
    service, writer, registry = correlation()
    asyncio.run(service.forward(packs(("s", callback("SM1", "delivered", 5)))))
    (partition,) = packs(("s", callback("SM1", "delivered", 5)))
    late = next(f"tick-{n}" for n in range(1000) if partition in packs(("d", dispatch(f"tick-{n}", "cm-x", 7200))))
    asyncio.run(service.forward(packs(("d", dispatch(late, "cm-x", 3600 + 6)))))

    (letter,) = [orjson.loads(record[2]) for record in writer.to(SETTINGS.dlq_topic)]
    assert letter["error"]["reason"] == "unmatched_message"
    assert "no dispatch record came within 3600 s" in letter["error"]["message"]
    assert (b"twilio:SM1", None) in [(record[1], record[2]) for record in writer.to(SETTINGS.hold_changelog_topic)]
    assert registry.get_sample_value("statusflow_unmatched_statuses_total", {"provider": "twilio"}) == 1
    assert registry.get_sample_value("statusflow_held_statuses", {"provider": "twilio"}) == 0


def test_statuses_too_large_for_one_changelog_record_are_dead_lettered_not_written() -> None:
    """A record the changelog would refuse would stop the worker at every restart: its statuses go instead."""
    service, writer, registry = correlation()
    statuses = ["accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]
    bodies = [("s", callback("SM1", status, n, padding=SLOT_LIMIT // 10)) for n, status in enumerate(statuses)]
    asyncio.run(service.forward(packs(*bodies[:2])))
    assert not writer.to(SETTINGS.dlq_topic)
    asyncio.run(service.forward(packs(*bodies[2:])))

    letters = [orjson.loads(record[2]) for record in writer.to(SETTINGS.dlq_topic)]
    assert len(statuses) == len(letters)
    assert {"too_large"} == {letter["error"]["reason"] for letter in letters}
    assert all(len(record[2] or b"") <= SLOT_LIMIT for record in writer.to(SETTINGS.hold_changelog_topic))
    assert writer.to(SETTINGS.hold_changelog_topic)[-1][1:] == (b"twilio:SM1", None)
    assert registry.get_sample_value("statusflow_held_statuses", {"provider": "twilio"}) == 0
