"""Internal wire formats round-trip exactly: packs on the re-keying topic and changelog states."""

from __future__ import annotations

import random
from functools import reduce

import orjson
import pytest
from hypothesis import given, settings

from stream import records
from stream.codec import event_from_envelope
from stream.domain.model import Event
from stream.domain.precedence import resolve
from stream.synthetic import member_story
from tests.unit.test_precedence_properties import member_events


def test_events_survive_a_pack_round_trip_unchanged() -> None:
    """What ingest writes, the resolve agent reads back as the very same events."""
    rng = random.Random(1)
    envelopes = member_story(rng, "m1", 8) + member_story(rng, "m2", 8)
    events = [event_from_envelope({**e, "message_id": f"x{i % 3}"}) for i, e in enumerate(envelopes)]
    pack = orjson.dumps([records.event_fields(e) for e in events])

    assert events == records.decode_pack(pack)


def test_member_states_survive_a_changelog_round_trip_unchanged() -> None:
    """A recovered state equals the state that was written, event ids and channels included."""
    rng = random.Random(2)
    events = [event_from_envelope(e) for e in member_story(rng, "m1", 10)]
    state = reduce(resolve, events, None)
    assert state is not None

    assert state == records.decode_state(records.encode_state(state))


@settings(max_examples=200)
@given(events=member_events())
def test_states_with_messages_and_reminders_survive_a_changelog_round_trip(events: list[Event]) -> None:
    """Every message (its key, reminder flag and deciding event) comes back, and so the same status."""
    state = reduce(resolve, events, None)
    assert state is not None

    assert state == records.decode_state(records.encode_state(state))
    assert records.STATE_FORMAT == orjson.loads(records.encode_state(state))[0]


def test_a_format_1_changelog_record_is_migrated_to_one_implicit_message_per_channel() -> None:
    """A worker upgraded on an old changelog reads each channel's decision as its invitation message."""
    old = orjson.dumps(
        [
            "m1",
            "c1",
            [5101, True, 4, 1_700_000_002_000, "sendgrid:e2"],
            [
                ["email", [5101, True, 4, 1_700_000_002_000, "sendgrid:e2"]],
                ["sms", [2020, True, 1, 1_700_000_001_000, "smpp:e1"]],
            ],
            ["sendgrid:e1", "sendgrid:e2", "smpp:e1"],
        ]
    )
    state = records.decode_state(old)

    assert (["email", "sms"], 2020, 3) == (
        [key for key, _ in state.messages],
        state.status.outcome.code,  # today's rule: the SMS delivery outranks the email bounce
        len(state.event_ids),
    )
    assert state == records.decode_state(records.encode_state(state))


@pytest.mark.parametrize(
    "raw",
    [b'[3, "m1", null, [], []]', b'{"member_id": "m1"}', b"[]", b'["m1", null]'],
)
def test_a_changelog_record_in_an_unknown_format_is_refused_with_a_clear_message(raw: bytes) -> None:
    """Never a silent misread: the error names the format and what to do."""
    with pytest.raises(records.StateFormatError, match="format"):
        records.decode_state(raw)


def test_a_pack_written_before_messages_is_read_as_the_channels_implicit_messages() -> None:
    """Packs in flight during an upgrade (9 fields) still resolve; a 2050 was a reminder's handover."""
    old = orjson.dumps(
        [
            ["m1", "c1", "smpp", "sms", 2020, True, 1, -1_700_000_000_000, "smpp:e1"],
            ["m1", "c1", "sendgrid", "email", 2050, False, 1, -1_700_000_000_000, "sendgrid:e1"],
        ]
    )
    first, second = records.decode_pack(old)

    assert (("sms", False), ("email~reminder", True)) == (
        (first.message, first.reminder),
        (second.message, second.reminder),
    )
