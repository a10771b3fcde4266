"""Envelope decoding: specific errors for bad input, tolerant reading of good input, schema parity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import reduce
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import decode_event, encode_state, event_from_envelope, format_time, parse_time, state_document
from stream.domain.errors import BadEventError
from stream.domain.model import Event
from stream.domain.precedence import resolve
from stream.providers.sendgrid import envelopes_from_body
from tests.unit.test_precedence_properties import member_events

GOOD = {"member_id": "m1", "source": "smpp", "status": "DELIVRD", "occurred_at": "2024-01-01T12:00:00Z"}


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"{not json", "malformed_json", ""),
        (b"[1, 2]", "not_an_object", ""),
        (orjson.dumps({**GOOD, "member_id": None}), "missing_field", "member_id"),
        (orjson.dumps({**GOOD, "member_id": ""}), "bad_field", "member_id"),
        (orjson.dumps({**GOOD, "member_id": {"id": 1}}), "bad_field", "member_id"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "source"}), "missing_field", "source"),
        (orjson.dumps({**GOOD, "source": "carrier-pigeon"}), "unknown_source", "source"),
        (orjson.dumps({**GOOD, "status": None}), "missing_field", "status"),
        (orjson.dumps({**GOOD, "status": True}), "bad_field", "status"),
        (orjson.dumps({**GOOD, "status": [1]}), "bad_field", "status"),
        (orjson.dumps({**GOOD, "status": "LOST"}), "unknown_status", "status"),
        (orjson.dumps({**GOOD, "channel": "pager"}), "bad_field", "channel"),
        (orjson.dumps({**GOOD, "channel": "email"}), "unsupported_channel", "channel"),
        (orjson.dumps({**GOOD, "occurred_at": None}), "missing_field", "occurred_at"),
        (orjson.dumps({**GOOD, "occurred_at": "yesterday"}), "bad_time", "occurred_at"),
        (orjson.dumps({**GOOD, "occurred_at": "2024-01-01T12:00:00"}), "bad_time", "occurred_at"),
        (orjson.dumps({**GOOD, "occurred_at": -5}), "bad_time", "occurred_at"),
        (orjson.dumps({**GOOD, "message_type": "teaser"}), "bad_field", "message_type"),
        (orjson.dumps({**GOOD, "detail": "oops"}), "bad_field", "detail"),
        (orjson.dumps({**GOOD, "message_id": {"id": 1}}), "bad_field", "message_id"),
        (orjson.dumps({**GOOD, "message_id": True}), "bad_field", "message_id"),
        (orjson.dumps({**GOOD, "event_id": "e1", "message_id": 1.5}), "bad_field", "message_id"),
    ],
)
def test_bad_envelopes_are_rejected_with_what_where_and_why(raw: bytes, reason: str, field: str) -> None:
    """Each kind of bad input gets its own reason class, the field at fault and a message."""
    with pytest.raises(BadEventError) as raised:
        decode_event(raw)

    assert (reason, field) == (raised.value.reason, raised.value.field)
    assert raised.value.message


def test_boolean_status_is_rejected_even_after_the_integer_was_seen() -> None:
    """True == 1 in Python; the outcome cache must not let a boolean pass as code 1."""
    decode_event(orjson.dumps({**GOOD, "source": "npstoday-sms", "status": 1}))

    with pytest.raises(BadEventError):
        decode_event(orjson.dumps({**GOOD, "source": "npstoday-sms", "status": True}))


@pytest.mark.parametrize(
    ("value", "epoch_ms"),
    [
        ("2024-01-01T12:00:00Z", 1_704_110_400_000),
        ("2024-01-01t13:00:00+01:00", 1_704_110_400_000),
        ("2024-01-01T12:00:00.250Z", 1_704_110_400_250),
        (1_704_110_400, 1_704_110_400_000),
        (1_704_110_400.5, 1_704_110_400_500),
        (1_704_110_400_250, 1_704_110_400_250),
        ("1704110400", 1_704_110_400_000),
    ],
)
def test_event_times_are_read_as_rfc3339_or_epoch_seconds_or_milliseconds(value: object, epoch_ms: int) -> None:
    """All accepted time spellings land on the same epoch milliseconds."""
    assert epoch_ms == parse_time(value)


def test_an_event_without_id_gets_a_stable_derived_one() -> None:
    """The same content gives the same id (so a resend deduplicates); other content another."""
    a, b = event_from_envelope(dict(GOOD)), event_from_envelope(dict(reversed(GOOD.items())))
    c = event_from_envelope({**GOOD, "status": "UNDELIV"})

    assert a.event_id == b.event_id != c.event_id


def test_event_ids_are_scoped_by_source() -> None:
    """Two providers may use the same id for different events: both count."""
    a = event_from_envelope({**GOOD, "event_id": "1"})
    b = event_from_envelope({**GOOD, "source": "idsurvey", "status": "Delivered", "event_id": "1"})

    assert a.event_id != b.event_id


@pytest.mark.parametrize("decode", [decode_event, lambda raw: event_from_envelope(orjson.loads(raw))])
def test_message_ids_name_a_message_per_channel_and_without_one_the_channel_has_one(
    decode: Callable[[bytes], Event],
) -> None:
    """7 and "7" are one message; no id (or an empty one) is the implicit invitation or reminder message."""
    keyed = {**GOOD, "event_id": "e1"}

    assert ["sms#7", "sms#7", "sms", "sms", "sms~reminder", "sms~reminder", "sms#x"] == [
        decode(orjson.dumps(envelope)).message
        for envelope in (
            {**keyed, "message_id": 7},
            {**keyed, "message_id": "7"},
            keyed,
            {**keyed, "message_id": ""},
            {**keyed, "message_type": "reminder"},
            {**keyed, "message_type": "Remider", "message_id": None},
            {**keyed, "message_type": 1, "message_id": "x"},
        )
    ]
    assert [True, False, False] == [
        decode(orjson.dumps({**keyed, "message_type": kind})).reminder for kind in ("remider", "survey", "manualResend")
    ]


def test_good_envelopes_validate_against_the_envelope_schema(validate: Callable[[str, Any], None]) -> None:
    """What the decoder accepts, the published schema accepts too."""
    for envelope in (
        GOOD,
        {**GOOD, "occurred_at": 1_704_110_400, "message_type": 1, "detail": {"err": "000"}},
        {**GOOD, "message_type": "remider", "message_id": "m-7"},
    ):
        event_from_envelope(dict(envelope))
        validate("envelope.v1.json", envelope)


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD, "member_id": None},
        {**GOOD, "source": "fax"},
        {**GOOD, "channel": "pager"},
        {**GOOD, "status": True},
        {**GOOD, "message_id": {"id": 1}},
    ],
)
def test_the_envelope_schema_rejects_what_the_decoder_rejects(
    bad: dict[str, Any], validate: Callable[[str, Any], None]
) -> None:
    """Schema and decoder agree on structural errors."""
    with pytest.raises(BadEventError):
        event_from_envelope(dict(bad))
    with pytest.raises(jsonschema.ValidationError):
        validate("envelope.v1.json", {k: v for k, v in bad.items() if v is not None})


def test_encoded_states_validate_against_the_member_status_schema(validate: Callable[[str, Any], None]) -> None:
    """The published document matches schemas/member-status.v1.json."""
    state = resolve(None, event_from_envelope({**GOOD, "campaign_id": 7}))

    validate("member-status.v1.json", orjson.loads(encode_state(state)))


def test_a_sendgrid_body_becomes_one_envelope_per_event_and_keeps_bad_events_apart() -> None:
    """Bounce vs blocked is read from type; an event without member_id is an error, not a crash."""
    body = orjson.dumps(
        [
            {
                "event": "bounce",
                "type": "blocked",
                "member_id": "m1",
                "timestamp": 1_704_110_400,
                "sg_event_id": "e1",
                "email": "a@b.c",
            },
            {"event": "open", "timestamp": 1_704_110_400, "sg_event_id": "e2"},
        ]
    )
    (_, first), (_, second) = envelopes_from_body(body)

    assert isinstance(first, dict)
    assert ("blocked", "e1", "email") == (first["status"], first["event_id"], first["channel"])
    assert "email" not in first["detail"]  # no personal data travels on
    assert isinstance(second, BadEventError)
    assert ("missing_field", "[1].member_id") == (second.reason, second.field)


@given(st.integers(min_value=0, max_value=253_402_300_799_999))  # up to 9999-12-31T23:59:59.999Z
def test_updated_at_is_rfc3339_utc_with_milliseconds_for_any_time(epoch_ms: int) -> None:
    """The cached, hand-rolled formatter agrees with datetime's own formatting."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, UTC).replace(microsecond=epoch_ms % 1000 * 1000)
    assert moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") == format_time(epoch_ms)


@settings(max_examples=300)
@given(
    events=member_events(),
    member_id=st.text(min_size=1, max_size=8),
    campaign_id=st.none() | st.text(max_size=8),
)
def test_an_encoded_state_is_exactly_its_document_as_orjson_writes_it(
    events: list[Event], member_id: str, campaign_id: str | None
) -> None:
    """The piecewise encoder (cached status/channels JSON) writes the bytes of the whole document."""
    state = reduce(resolve, events, None)
    assert state is not None
    state = state._replace(member_id=member_id, campaign_id=campaign_id)
    for _ in range(2):  # built once, then from the cache
        assert orjson.dumps(state_document(state)) == encode_state(state)
