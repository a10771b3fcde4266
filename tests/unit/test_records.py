"""Internal wire formats round-trip exactly: packs on the re-keying topic and changelog states."""

from __future__ import annotations

import random
import zlib
from functools import reduce

import orjson
import pytest
from hypothesis import given, settings

from stream import records
from stream.codec import event_from_envelope
from stream.domain import digest
from stream.domain.model import Event, MemberState
from stream.domain.precedence import resolve
from stream.synthetic import member_story
from tests.unit.test_precedence_properties import member_events


def test_events_survive_a_pack_round_trip_unchanged() -> None:
    """What ingest writes, the resolver reads back as the very same events."""
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
        state.events,
    )
    assert state == records.decode_state(records.encode_state(state))


def format_2(state: MemberState, event_ids: list[str]) -> bytes:
    """Return ``state`` as the format-2 record a worker before bounded states wrote: every event id."""
    messages = orjson.loads(records.encode_state(state))[3]
    return orjson.dumps([2, state.member_id, state.campaign_id, messages, sorted(event_ids)])


def test_a_format_2_record_is_migrated_to_the_digest_of_its_ids() -> None:
    """Ids kept whole up to 32 (the same state as resolving again), a filter of all of them beyond."""
    rng = random.Random(3)
    for n in (3, 32, 33, 2_000):
        envelopes = member_story(rng, "m1", n)
        state = reduce(resolve, [event_from_envelope(e) for e in envelopes], None)
        assert state is not None
        event_ids = [f"{e['source']}:{e['event_id']}" for e in envelopes]

        migrated = records.decode_state(format_2(state, event_ids))

        assert migrated == state
        assert migrated.seen == digest.of(event_ids)
        assert digest.is_exact(migrated.seen) == (n <= digest.EXACT)
        assert records.decode_state(records.encode_state(migrated)) == migrated


def test_a_compressed_format_2_record_of_25000_ids_is_migrated_into_a_few_kilobytes() -> None:
    """What a busy member left in an old changelog (over 64 KiB, so zlib-framed) reads back bounded."""
    events = [
        event_from_envelope(
            {
                "member_id": "busy",
                "event_id": f"e{i}",
                "source": "smpp",
                "status": "ENROUTE",
                "occurred_at": 1_735_689_600 + i,
            }
        )
        for i in range(25_000)
    ]
    state = reduce(resolve, events, None)
    assert state is not None
    old = format_2(state, [e.event_id for e in events])
    old = b"z" + zlib.compress(old, 1)  # what encode_state did above 64 KiB

    migrated = records.decode_state(old)

    assert migrated == state
    assert len(records.encode_state(migrated)) < 3_000 < len(old)


@pytest.mark.parametrize(
    "raw",
    [
        b'[4, "m1", null, [], []]',
        b'[3, "m1", null, [], []]',  # no message
        b'[3, "m1", null, [["sms", false, [2020, true, 1, 0, "smpp:1"], 0]], "AAAA"]',  # a filter of 3 bytes
        b'[3, "m1", null, [["sms", false, [2020, true, 1, 0, "smpp:1"], 0]], "not base64!"]',
        b'[2, "m1", null, [["sms", false, [2020, true, 1, 0, "smpp:1"], 0]], "AAAA"]',  # format 2 kept ids
        b'{"member_id": "m1"}',
        b"[]",
        b'["m1", null]',
    ],
)
def test_a_changelog_record_in_an_unknown_format_is_refused_with_a_clear_message(raw: bytes) -> None:
    """Never a silent misread: the error names the format and what to do."""
    with pytest.raises(records.StateFormatError, match=r"format|message|filter"):
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
