"""The worker on the real broker at the edges: poison records, huge members, huge bodies, crashes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.e2e.test_worker_kafka import offline
from tests.kafka_fixtures import STORES, Pipeline, differences_of, side_by_side

pytestmark = pytest.mark.kafka

KAFKA_DEFAULT_MAX_MESSAGE = 1_048_588


def envelope(member_id: str, event_id: str, status: str = "ENROUTE", at: int = 1_735_689_600) -> bytes:
    """Return one SMPP envelope line."""
    return orjson.dumps(
        {"member_id": member_id, "event_id": event_id, "source": "smpp", "status": status, "occurred_at": at}
    )


@pytest.mark.parametrize("stores", [STORES], ids=["+".join(STORES)])
def test_poison_records_are_dead_lettered_and_never_stop_ingest(
    pipeline: Pipeline, validate: Callable[[str, Any], None], stores: tuple[str, ...]
) -> None:
    """Tombstones on both raw topics and letters that would pass 1 MB: all dead-lettered, a restart does not loop."""
    s = pipeline.settings
    lines_ = side_by_side(pipeline, stores)  # a worker per store on the same raw topics
    nuls, binary = b"\x00" * 200_000, b"\xff" * 800_000
    workers = [line.start_worker() for line in lines_]

    pipeline.produce_values([None, nuls, binary, envelope("after-poison", "1", "DELIVRD")], s.events_topic)
    pipeline.produce_values([None, b"[]"], s.sendgrid_topic)

    pipeline.wait_for(
        lambda: all("after-poison" in line.latest_states() for line in lines_), 120, "the good event after the poison"
    )
    pipeline.wait_for(
        lambda: all(len(line.read(line.settings.dlq_topic)) >= 4 for line in lines_), 60, "four dead letters"
    )
    counts = []
    for line in lines_:
        records = line.read(line.settings.dlq_topic)
        letters = [orjson.loads(r.value) for r in records]
        for letter in letters:
            validate("dead-letter.v1.json", letter)
        assert 2 == sum(1 for letter in letters if letter["error"]["reason"] == "empty_record")
        assert {s.events_topic, s.sendgrid_topic} == {
            letter["topic"] for letter in letters if letter["error"]["reason"] == "empty_record"
        }
        big = {letter["raw_sha256"]: letter for letter in letters if "raw_sha256" in letter}
        assert {hashlib.sha256(nuls).hexdigest(), hashlib.sha256(binary).hexdigest()} == set(big)
        assert max(len(r.value) for r in records) < 64 * 1024
        counts.append(len(letters))
    assert [None] * len(workers) == [worker.process.poll() for worker in workers]

    for worker in workers:
        worker.kill()
    restarted = [line.start_worker() for line in lines_]
    pipeline.produce([envelope("after-restart", "2", "DELIVRD")])

    pipeline.wait_for(
        lambda: all("after-restart" in line.latest_states() for line in lines_), 120, "an event after the restart"
    )
    assert [None] * len(restarted) == [worker.process.poll() for worker in restarted]
    # Nothing re-read twice after the commit.
    assert counts == [len(line.read(line.settings.dlq_topic)) for line in lines_]


@pytest.mark.parametrize("stores", [STORES], ids=["+".join(STORES)])
def test_a_member_with_25000_events_survives_kill_and_restart(pipeline: Pipeline, stores: tuple[str, ...]) -> None:
    """Its state is bounded (a filter, not 25,000 ids); after kill -9, restart and one more event it equals offline."""
    lines_ = side_by_side(pipeline, stores)  # a worker per store on the same input
    lines = [envelope("busy", f"e{i}", "ENROUTE", 1_735_689_600 + i) for i in range(25_000)]
    last = envelope("busy", "last", "DELIVRD", 1_735_700_000)
    expected = offline([*lines, last])
    so_far = offline(lines)["busy"]["events"]  # past 32 events the count is the filter's estimate
    assert abs(so_far - 25_000) < 2_500
    workers = [line.start_worker() for line in lines_]

    pipeline.produce(lines)
    pipeline.wait_for(
        lambda: all(line.latest_states().get("busy", {}).get("events") == so_far for line in lines_),
        240,
        "all 25,000 events",
    )
    for worker in workers:
        worker.kill()
    for line in lines_:
        line.start_worker()
    pipeline.produce([last])

    pipeline.wait_for(
        lambda: all(line.latest_states() == expected for line in lines_),
        180,
        "the state after restart and one more event",
        lambda: differences_of(lines_, expected),
    )


def test_a_sendgrid_body_of_15000_events_for_one_member_resolves_whole(pipeline: Pipeline) -> None:
    """A 1.5 MB body re-keys to more than one pack's worth; every event is resolved, none dropped."""
    body = orjson.dumps(
        [
            {
                "event": "delivered" if i % 2 else "processed",
                "member_id": "one",
                "timestamp": 1_735_689_600 + i,
                "sg_event_id": f"sg-{i:06d}-{'x' * 40}",
            }
            for i in range(15_000)
        ]
    )
    assert len(body) > 1_500_000
    expected = offline([body], "sendgrid")
    pipeline.start_worker()

    pipeline.produce_values([body], pipeline.settings.sendgrid_topic)

    pipeline.wait_for(
        lambda: pipeline.latest_states() == expected,
        180,
        "every event of the body",
        lambda: pipeline.differences(expected),
    )
    assert abs(15_000 - expected["one"]["events"]) < 750  # the filter's estimate, past 32 events
