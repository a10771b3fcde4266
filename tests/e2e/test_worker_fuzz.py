"""
Fuzzing the worker on the real broker: whatever reaches the raw topics, nothing stops and nothing is lost.

Hypothesis draws mixes of random bytes, random JSON, mutated valid envelopes, SendGrid bodies with
good and bad events, null values and oversize records, interleaved with good events. One worker
takes every example; after each, the published states must equal the offline resolver's over the
same records, and the dead-letter topic must hold exactly one letter per bad record (or bad event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stream.codec import state_document
from stream.domain import vocab
from stream.domain.model import MemberState
from stream.resolver import DeadLetter, Tally, apply, events_of
from tests.kafka_fixtures import Pipeline, WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.filterwarnings("ignore:Generating overly large repr")]

ENVELOPE, SENDGRID = "envelope", "sendgrid"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
members = st.sampled_from([f"fz{i}" for i in range(40)])
event_ids = st.integers(0, 300).map(str)  # a small pool: duplicates happen
good_envelopes = st.fixed_dictionaries(
    {
        "member_id": members,
        "event_id": event_ids,
        "source": st.just("smpp"),
        "status": st.sampled_from(sorted(str(key) for key in vocab.SMPP)),
        "occurred_at": st.integers(1_735_689_600, 1_735_699_600),
    }
)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Return a valid envelope with one field dropped, replaced by random JSON, or one field added."""
    envelope = dict(draw(good_envelopes))
    name = draw(st.sampled_from([*envelope, "channel", "detail", "campaign_id", "extra"]))
    if name in envelope and draw(st.booleans()):
        del envelope[name]
    else:
        envelope[name] = draw(json_values)
    return envelope


sendgrid_events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["processed", "delivered", "open", "bounce", "dropped", "deferred"]),
        "member_id": members,
        "timestamp": st.integers(1_735_689_600, 1_735_699_600),
        "sg_event_id": event_ids.map(lambda i: f"sg{i}"),
    }
)
sendgrid_bodies = st.lists(sendgrid_events | mutated_envelopes() | json_values, min_size=1, max_size=8).map(
    orjson.dumps
)
oversize = st.sampled_from([b"\x00" * 200_000, b"\xff" * 300_000, b'{"a": "' + b"x" * 300_000 + b'"}'])
anything = st.none() | st.binary(max_size=300) | json_values.map(orjson.dumps) | oversize
records = st.lists(
    st.one_of(
        st.tuples(st.just(ENVELOPE), good_envelopes.map(orjson.dumps)),
        st.tuples(st.just(ENVELOPE), mutated_envelopes().map(orjson.dumps)),
        st.tuples(st.just(SENDGRID), sendgrid_bodies),
        st.tuples(st.sampled_from([ENVELOPE, SENDGRID]), anything),
    ),
    min_size=40,
    max_size=120,
)


@dataclass
class Fuzzing:
    """One worker and everything sent to it so far, across examples."""

    pipeline: Pipeline
    worker: WorkerProcess | None = None
    sent: dict[str, list[bytes | None]] = field(default_factory=lambda: {ENVELOPE: [], SENDGRID: []})

    def expected(self) -> tuple[dict[str, Any], int]:
        """Return the offline states of everything sent (both topics joined), and how many dead letters it makes."""
        states: dict[str, MemberState] = {}
        letters = 0
        for record_format, values in self.sent.items():
            for value in values:
                for item in events_of(value, record_format):
                    if isinstance(item, DeadLetter):
                        letters += 1
                    else:
                        apply(states, item, Tally())
        return {member: state_document(state) for member, state in states.items()}, letters


@pytest.fixture
def fuzzing(pipeline: Pipeline) -> Fuzzing:
    """Return the shared fuzzing run of this test."""
    return Fuzzing(pipeline)


@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.generate],
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=records)
def test_whatever_reaches_the_raw_topics_the_worker_resolves_the_good_and_dead_letters_the_rest(
    fuzzing: Fuzzing, batch: list[tuple[str, bytes | None]]
) -> None:
    """The worker never exits; good events resolve as offline; one proportionate letter per bad record."""
    pipeline, s = fuzzing.pipeline, fuzzing.pipeline.settings
    if fuzzing.worker is None:
        fuzzing.worker = pipeline.start_worker()
    for record_format, topic in ((ENVELOPE, s.events_topic), (SENDGRID, s.sendgrid_topic)):
        values = [value for kind, value in batch if kind == record_format]
        fuzzing.sent[record_format].extend(values)
        pipeline.produce_values(values, topic)
    expected, letters = fuzzing.expected()

    pipeline.wait_for(
        lambda: len(pipeline.read(s.dlq_topic)) >= letters and pipeline.latest_states() == expected,
        120,
        f"{letters} dead letters and the offline states",
        lambda: f"{len(pipeline.read(s.dlq_topic))} letters\n{pipeline.differences(expected)}",
    )
    dead = pipeline.read(s.dlq_topic)
    assert letters == len(dead)  # none twice
    assert max((len(r.value) for r in dead), default=0) < 64 * 1024 + 2048
    sent_bytes = sum(len(v or b"") for values in fuzzing.sent.values() for v in values)
    assert sum(len(r.value) for r in dead) < 4 * sent_bytes + 1024 * len(dead)
    assert fuzzing.worker.process.poll() is None
