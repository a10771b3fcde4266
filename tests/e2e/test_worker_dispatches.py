"""Dispatch records on real Kafka: statuses before and after their dispatches resolve as offline; the rest are unmatched."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest

from stream.codec import format_time, state_document
from stream.domain.correlate import HOUR_MS, Held
from stream.domain.model import MemberState
from stream.resolver import DeadLetter, DispatchJoin, Sinks, Tally, items_of
from tests.kafka_fixtures import STORES, Pipeline, differences_of, side_by_side
from tests.unit.test_correlate import T0, sendgrid, ses, twilio

pytestmark = pytest.mark.kafka

WAIT_S = 3600  # the statuses below span 30 minutes of event time


def whatsapp(wamid: str, status: str, at_s: int) -> bytes:
    """Return a Cloud API webhook with one status and no biz_opaque_callback_data."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
        "statuses": [
            {"id": wamid, "status": status, "timestamp": str(T0 // 1000 + at_s), "recipient_id": "4512345678"}
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }
    return orjson.dumps(body)


def postmark(message_id: str, record_type: str, at_s: int) -> bytes:
    """Return a Postmark webhook without Metadata.member_id."""
    stamp = format_time(T0 + at_s * 1000)
    field = {"Delivery": "DeliveredAt", "Open": "ReceivedAt", "Click": "ReceivedAt"}[record_type]
    return orjson.dumps({"RecordType": record_type, "MessageID": message_id, field: stamp, "Metadata": {}})


PROVIDERS: dict[str, tuple[Callable[[str, str, int], bytes], list[str]]] = {
    "twilio": (twilio, ["sent", "delivered", "undelivered"]),
    "sendgrid": (sendgrid, ["processed", "delivered", "open"]),
    "ses": (ses, ["Send", "Delivery", "Open"]),
    "whatsapp": (whatsapp, ["sent", "delivered", "read"]),
    "postmark": (postmark, ["Delivery", "Open", "Click"]),
}
MESSAGES = 8  # per provider; the last two get no dispatch


def scenario() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]], list[bytes]]:
    """Return statuses before and after their dispatches (format, body), and the dispatch records."""
    before: list[tuple[str, bytes]] = []
    after: list[tuple[str, bytes]] = []
    dispatches: list[bytes] = []
    for provider, (body, statuses) in PROVIDERS.items():
        for n in range(MESSAGES):
            message_id = f"{provider}-{n}-W86EgYT6SQ"
            made = [(provider, body(message_id, status, 60 * n + 7 * k + 1)) for k, status in enumerate(statuses)]
            (before if n % 2 == 0 else after).extend(made)
            if n < MESSAGES - 2:
                record = {"provider": provider, "message_id": message_id, "member_id": f"cm-{provider}-{n % 3}"}
                dispatches.append(orjson.dumps({**record, "occurred_at": T0, "campaign_id": "c-1"}))
    return before, after, dispatches


def ticks(partitions: int) -> list[bytes]:
    """Return a dispatch per partition stamped past the wait: each partition's watermark moves beyond it."""
    found: dict[int, bytes] = {}
    n = 0
    while len(found) < partitions:
        message_id = f"tick-{n}"
        partition = zlib.crc32(f"twilio:{message_id}".encode()) % partitions
        record = {
            "provider": "twilio",
            "message_id": message_id,
            "member_id": "cm-clock",
            "occurred_at": T0 + 3 * HOUR_MS,
        }
        found.setdefault(partition, orjson.dumps(record))
        n += 1
    return list(found.values())


def offline(statuses: list[tuple[str, bytes]], dispatches: list[bytes]) -> tuple[dict[str, Any], list[DeadLetter]]:
    """Resolve the same records with the offline join (`statusflow resolve --dispatches`)."""
    states: dict[str, MemberState] = {}
    dead: list[DeadLetter] = []
    for provider in PROVIDERS:
        join = DispatchJoin(provider, states, Tally(), Sinks(dead.append))
        join.dispatches([("d", n, line) for n, line in enumerate(dispatches)])
        join.lines([("b", n, body) for n, (fmt, body) in enumerate(statuses) if fmt == provider])
        join.finish()
    return {member: state_document(state) for member, state in states.items()}, dead


def held_now(pipeline: Pipeline) -> float:
    """Return statusflow_held_statuses summed over providers, from the first worker (-1 before it serves)."""
    try:
        lines = pipeline.workers[0].metrics().splitlines()
    except OSError:  # not listening yet
        return -1
    return sum(float(line.split()[-1]) for line in lines if line.startswith("statusflow_held_statuses{"))


def test_statuses_before_and_after_their_dispatch_resolve_as_offline_and_the_rest_are_unmatched(
    pipeline: Pipeline,
) -> None:
    """Statuses held before their dispatch, joined at once after it; no dispatch within the wait: unmatched_message."""
    pipeline.settings = replace(pipeline.settings, dispatch_wait=float(WAIT_S))
    s = pipeline.settings
    before, after, dispatches = scenario()
    expected, unmatched = offline(before + after, dispatches)
    waiting = {
        (item.provider, item.event_id) for fmt, body in before for item in items_of(body, fmt) if isinstance(item, Held)
    }
    pipeline.start_worker()

    for provider in PROVIDERS:
        pipeline.produce([body for fmt, body in before if fmt == provider], s.raw_topic(provider), keyed=False)
    pipeline.wait_for(lambda: held_now(pipeline) == len(waiting), 120, f"{len(waiting)} statuses held")
    pipeline.produce(dispatches, s.dispatches_topic, keyed=False)
    for provider in PROVIDERS:
        pipeline.produce([body for fmt, body in after if fmt == provider], s.raw_topic(provider), keyed=False)
    pipeline.wait_for(
        lambda: pipeline.latest_states() == expected,
        120,
        "the joined statuses to resolve as offline",
        lambda: pipeline.differences(expected),
    )
    assert held_now(pipeline) == len(unmatched)  # no dispatch: still waiting, within the wait

    pipeline.produce(ticks(s.partitions), s.dispatches_topic, keyed=False)

    def letters() -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in pipeline.read(s.dlq_topic)]

    pipeline.wait_for(lambda: len(letters()) >= len(unmatched), 120, f"{len(unmatched)} unmatched letters")
    found = letters()
    assert sorted(letter["raw"] for letter in found) == sorted((d.raw or b"").decode() for d in unmatched)
    assert {("unmatched_message", "no dispatch record came within 3600 s")} == {
        (letter["error"]["reason"], letter["error"]["message"].split("; and ")[1].split(" of its time")[0])
        for letter in found
    }
    assert all(letter["topic"].startswith("message-events-") and "offset" in letter for letter in found)
    assert expected == pipeline.latest_states()
    assert held_now(pipeline) == 0
    metrics = pipeline.workers[0].metrics()
    assert 'statusflow_unmatched_statuses_total{provider="twilio"} 6.0' in metrics


@pytest.mark.parametrize("stores", [STORES], ids=["+".join(STORES)])
def test_held_statuses_survive_a_kill_and_join_their_dispatch_in_the_next_worker(
    pipeline: Pipeline, stores: tuple[str, ...]
) -> None:
    """The hold is in its changelog: a worker killed with -9 hands its waiting statuses to the next one. Per store."""
    s = pipeline.settings
    lines_ = side_by_side(pipeline, stores)  # a worker per store on the same raw and dispatch topics
    statuses = [("twilio", twilio(f"SM{n}", status, n)) for n in range(4) for status in ("sent", "delivered")]
    dispatches = [
        orjson.dumps({"provider": "twilio", "message_id": f"SM{n}", "member_id": f"cm-{n}", "occurred_at": T0})
        for n in range(4)
    ]
    expected, unmatched = offline(statuses, dispatches)
    assert not unmatched
    firsts = [line.start_worker() for line in lines_]
    pipeline.produce([body for _, body in statuses], s.raw_topic("twilio"), keyed=False)
    pipeline.wait_for(
        lambda: all(held_now(line) == len(statuses) for line in lines_), 120, f"{len(statuses)} statuses held"
    )

    for line, first in zip(lines_, firsts, strict=True):
        first.kill()
        line.workers.remove(first)
        line.start_worker()
    pipeline.wait_for(
        lambda: all(held_now(line) == len(statuses) for line in lines_), 120, "the next worker to hold them again"
    )
    pipeline.produce(dispatches, s.dispatches_topic, keyed=False)

    pipeline.wait_for(
        lambda: all(line.latest_states() == expected for line in lines_),
        120,
        "the restored statuses to join their dispatches",
        lambda: differences_of(lines_, expected),
    )
    pipeline.wait_for(lambda: all(held_now(line) == 0 for line in lines_), 30, "nothing held")
    assert [[]] * len(lines_) == [line.read(line.settings.dlq_topic) for line in lines_]
