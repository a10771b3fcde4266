"""The join of memberless statuses with dispatch records: order-independent, bounded, by event time."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import event_from_envelope, parse_time
from stream.dispatches import Unclaimed, claim, decode_dispatch
from stream.domain.correlate import HOUR_MS, MAX_HELD_PER_MESSAGE, Correlator, Dispatch, Held, Slot
from stream.domain.errors import BadEventError
from stream.domain.model import Event, MemberState
from stream.domain.precedence import resolve_members
from stream.resolver import DeadLetter, DispatchJoin, Sinks, Tally, items_of

T0 = parse_time("2025-01-01T12:00:00Z")


def twilio(sid: str, status: str, at_s: int, error_code: str = "") -> bytes:
    """Return a Twilio status callback as posted, with no member_id on its URL."""
    fields = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "From": "+15017250604",
        "To": "+4512345678",
        "received_at": str(T0 // 1000 + at_s),
        **({"ErrorCode": error_code} if error_code else {}),
    }
    return urllib.parse.urlencode(fields).encode()


def sendgrid(x_message_id: str, event: str, at_s: int) -> bytes:
    """Return a SendGrid body whose event carries no member_id custom arg."""
    return orjson.dumps(
        [
            {
                "email": "r@example.com",
                "event": event,
                "sg_event_id": f"{x_message_id}-{event}-{at_s}",
                "sg_message_id": f"{x_message_id}.filterdrecv-5645d9c87f-xv2kp-1-5E3B1C2C-4A-0",
                "timestamp": T0 // 1000 + at_s,
            }
        ]
    )


def ses(message_id: str, event_type: str, at_s: int) -> bytes:
    """Return an SES event publishing record without message tags."""
    stamp = f"2025-01-01T12:{at_s // 60:02d}:{at_s % 60:02d}.000Z"
    details = {"Delivery": {"timestamp": stamp}, "Open": {"timestamp": stamp}, "Send": {}}[event_type]
    record = {"eventType": event_type, "mail": {"timestamp": stamp, "messageId": message_id, "tags": {}}}
    record[event_type.lower()] = details
    return orjson.dumps(record)


BODIES: dict[str, tuple[Callable[[str, str, int], bytes], list[str]]] = {
    "twilio": (twilio, ["queued", "sent", "delivered", "undelivered", "read"]),
    "sendgrid": (sendgrid, ["processed", "delivered", "open", "bounce", "click"]),
    "ses": (ses, ["Send", "Delivery", "Open"]),
}


def dispatch(provider: str, message_id: str, member_id: str, **extra: Any) -> bytes:
    """Return a dispatch record as the sending system publishes it."""
    return orjson.dumps(
        {"provider": provider, "message_id": message_id, "member_id": member_id, "occurred_at": T0, **extra}
    )


def run(records: list[tuple[str, bytes]], record_format: str) -> tuple[dict[str, MemberState], list[DeadLetter]]:
    """Feed dispatch ('d') and status ('s') lines to the offline join in the order given."""
    states: dict[str, MemberState] = {}
    dead: list[DeadLetter] = []
    join = DispatchJoin(record_format, states, Tally(), Sinks(dead.append))
    for n, (kind, line) in enumerate(records):
        (join.dispatches if kind == "d" else join.lines)([("in", n, line)])
    join.finish()
    return states, dead


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, list[tuple[str, bytes]], dict[str, str]]:
    """Draw a provider, its dispatches and statuses (some messages never dispatched), and each message's member."""
    provider = draw(st.sampled_from(sorted(BODIES)))
    body, statuses = BODIES[provider]
    count = draw(st.integers(1, 5))
    members = {f"M{i}": f"cm-{draw(st.integers(0, 2))}" for i in range(count)}  # two messages may share a member
    dispatched = draw(st.sets(st.sampled_from(sorted(members))))
    records = [
        (
            "d",
            dispatch(
                provider,
                message_id,
                member,
                campaign_id="c-9",
                message_type=draw(st.sampled_from(["survey", "reminder"])),
            ),
        )
        for message_id, member in members.items()
        if message_id in dispatched
    ]
    records += [
        ("s", body(message_id, draw(st.sampled_from(statuses)), draw(st.integers(1, 3000))))
        for message_id in members
        for _ in range(draw(st.integers(1, 3)))
    ]
    duplicated = records + draw(st.lists(st.sampled_from(records), max_size=4))
    return provider, draw(st.permutations(duplicated)), members


def upfront(
    provider: str, records: list[tuple[str, bytes]]
) -> tuple[dict[str, MemberState], set[str], dict[bytes, str]]:
    """
    Return the reference: every status resolved with its dispatch's member filled in beforehand.

    Also the event ids of the rest (unmatched: an event id is identity, so a resent status is one),
    and each status's event id by its bytes.
    """
    dispatches: dict[str, Dispatch] = {}
    for kind, line in records:
        if kind == "d":
            decoded = decode_dispatch(line)
            dispatches.setdefault(decoded.message_id, decoded)
    events: list[Event] = []
    unmatched: set[str] = set()
    ids: dict[bytes, str] = {}
    for kind, line in records:
        if kind != "s":
            continue
        for item in items_of(line, provider):
            assert isinstance(item, Held), item
            ids[item.payload.raw] = item.event_id
            found = dispatches.get(item.message_id)
            if found is None:
                unmatched.add(item.event_id)
            else:
                events.append(event_from_envelope(claim(item.payload.envelope, found)))
    return resolve_members(events), unmatched, ids


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_any_interleaving_and_duplication_gives_the_states_of_members_known_upfront(
    scenario: tuple[str, list[tuple[str, bytes]], dict[str, str]],
) -> None:
    """Dispatches before, after or between their statuses, resent or not: the states of a known member, the same unmatched."""
    provider, records, _ = scenario
    states, dead = run(records, provider)
    expected, unmatched, ids = upfront(provider, records)
    assert states == expected
    assert sorted(ids[letter.raw or b""] for letter in dead) == sorted(unmatched)  # each once
    assert {letter.error.reason for letter in dead} <= {"unmatched_message"}


def test_a_sendgrid_dispatch_names_the_x_message_id_the_prefix_of_sg_message_id() -> None:
    """SendGrid: X-Message-Id is the part of sg_message_id before the first dot."""
    states, dead = run(
        [
            ("s", sendgrid("W86EgYT6SQKk0lRflfLRsA", "delivered", 5)),
            ("d", dispatch("sendgrid", "W86EgYT6SQKk0lRflfLRsA", "cm-7")),
        ],
        "sendgrid",
    )
    assert not dead
    assert states["cm-7"].status.outcome.code == 2020


def test_a_mailgun_dispatch_with_angle_brackets_meets_the_event_without() -> None:
    """Mailgun: the send API answers <id>, events name id."""
    body = {
        "signature": {"timestamp": "1735732805", "token": "t", "signature": "s"},
        "event-data": {
            "event": "delivered",
            "id": "CPgfbmQMTCKtHW6uIWtuVe",
            "timestamp": 1735732805.0,
            "message": {"headers": {"message-id": "20250101120000.1.1@mg.example.com"}},
            "user-variables": {},
        },
    }
    states, dead = run(
        [("d", dispatch("mailgun", "<20250101120000.1.1@mg.example.com>", "cm-3")), ("s", orjson.dumps(body))],
        "mailgun",
    )
    assert not dead
    assert states["cm-3"].status.outcome.code == 2020


def test_a_status_without_its_dispatch_is_unmatched_at_the_end_saying_where_the_member_was_looked_for() -> None:
    """The letter says where the member was looked for and which message no dispatch named, with its origin."""
    _, dead = run([("s", twilio("SM1", "delivered", 5))], "twilio")
    (letter,) = dead
    assert (letter.error.reason, letter.error.field) == ("unmatched_message", "[0].member_id")
    assert "member_id query parameter" in letter.error.message
    assert "no dispatch record for twilio message 'SM1'" in letter.error.message
    assert letter.origin == {"file": "in", "line": 0, "index": 0}


def test_a_status_without_a_message_id_cannot_wait_and_is_dead_lettered_at_once() -> None:
    """Nothing to join on: dead-lettered as before, saying so."""
    body = urllib.parse.urlencode({"MessageStatus": "delivered", "received_at": "1735732805"}).encode()
    (item,) = items_of(body, "twilio")
    assert isinstance(item, DeadLetter)
    assert item.error.reason == "missing_field"
    assert "no message id to join on" in item.error.message


def test_a_memberless_status_that_is_wrong_otherwise_is_dead_lettered_at_once_not_a_day_later() -> None:
    """Only the member may be missing while a status waits; any other fault is found at once."""
    (item,) = items_of(twilio("SM1", "no-such-status", 5), "twilio")
    assert isinstance(item, DeadLetter)
    assert item.error.reason == "unknown_status"


def test_the_webhook_receivers_member_header_gives_the_member() -> None:
    """The receiver's member_id record header is the member of an event naming none."""
    (item,) = items_of(twilio("SM1", "delivered", 5), "twilio", {"member_id": "cm-9"})
    assert not isinstance(item, DeadLetter | Held)
    assert item.member_id == "cm-9"


def test_the_dispatchs_campaign_and_message_type_fill_in_what_the_status_lacks() -> None:
    """A reminder dispatch makes its delivery report a reminder's."""
    states, _ = run(
        [
            ("d", dispatch("twilio", "SM1", "cm-1", campaign_id="c-1", message_type="reminder")),
            ("s", twilio("SM1", "delivered", 5)),
        ],
        "twilio",
    )
    assert states["cm-1"].campaign_id == "c-1"
    assert states["cm-1"].status.outcome.code == 2050  # a delivered reminder: Reminded


def test_a_second_dispatch_naming_another_member_is_dead_lettered_and_the_first_stands() -> None:
    """A sender bug is reported, not resolved silently either way."""
    states, dead = run(
        [
            ("d", dispatch("twilio", "SM1", "cm-1")),
            ("d", dispatch("twilio", "SM1", "cm-2")),
            ("s", twilio("SM1", "delivered", 5)),
        ],
        "twilio",
    )
    assert set(states) == {"cm-1"}
    (letter,) = dead
    assert (letter.error.reason, letter.error.field) == ("bad_field", "member_id")
    assert "'cm-1' before" in letter.error.message


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        (b"{", "malformed_json", ""),
        (b"[]", "not_an_object", ""),
        (b"", "empty_record", ""),
        (orjson.dumps({"message_id": "SM1", "member_id": "m", "occurred_at": 1}), "missing_field", "provider"),
        (
            orjson.dumps({"provider": "pigeon", "message_id": "SM1", "member_id": "m", "occurred_at": 1}),
            "unknown_source",
            "provider",
        ),
        (orjson.dumps({"provider": "twilio", "member_id": "m", "occurred_at": 1}), "missing_field", "message_id"),
        (orjson.dumps({"provider": "twilio", "message_id": "SM1", "occurred_at": 1}), "missing_field", "member_id"),
        (
            orjson.dumps({"provider": "twilio", "message_id": "SM1", "member_id": "m\n", "occurred_at": 1}),
            "bad_field",
            "member_id",
        ),
        (orjson.dumps({"provider": "twilio", "message_id": "SM1", "member_id": "m"}), "missing_field", "occurred_at"),
        (
            orjson.dumps({"provider": "twilio", "message_id": "SM1", "member_id": "m", "occurred_at": "noon"}),
            "bad_time",
            "occurred_at",
        ),
        (
            orjson.dumps(
                {"provider": "twilio", "message_id": "SM1", "member_id": "m", "occurred_at": 1, "channel": "fax"}
            ),
            "bad_field",
            "channel",
        ),
        (
            orjson.dumps({"provider": "twilio", "message_id": "x" * 257, "member_id": "m", "occurred_at": 1}),
            "bad_field",
            "message_id",
        ),
        (
            orjson.dumps(
                {"provider": "twilio", "message_id": "SM1", "member_id": "m", "occurred_at": 1, "message_type": "x"}
            ),
            "bad_field",
            "message_type",
        ),
    ],
)
def test_a_bad_dispatch_record_is_refused_saying_what_and_where(record: bytes, reason: str, field: str) -> None:
    """Each fault of a dispatch record has its reason and field."""
    with pytest.raises(BadEventError) as refused:
        decode_dispatch(record)
    assert (refused.value.reason, refused.value.field) == (reason, field)


def _held(message_id: str, at_ms: int, event_id: str = "e") -> Held[str]:
    return Held("twilio", message_id, event_id, at_ms, "payload")


def _dispatch(message_id: str, at_ms: int, member_id: str = "cm-1") -> Dispatch:
    return Dispatch("twilio", message_id, member_id, at_ms)


def test_a_held_status_is_unmatched_once_the_watermark_passes_its_time_plus_the_wait() -> None:
    """Event time decides: the wait is measured from the status's own time."""
    join: Correlator[str] = Correlator(wait_ms=HOUR_MS, retention_ms=HOUR_MS)
    assert join.status(_held("SM1", T0)) is None
    join.advance(T0 + HOUR_MS)  # exactly the wait: still waiting
    assert join.expire() == ([], [])
    assert join.held_by_provider == {"twilio": 1}
    join.advance(T0 + HOUR_MS + 1)
    unmatched, forgotten = join.expire()
    assert [h.message_id for h in unmatched] == ["SM1"]
    assert forgotten == [("twilio", "SM1")]
    assert join.slots == {}
    assert join.held_by_provider == {"twilio": 0}


def test_a_dispatch_is_kept_for_the_retention_after_the_last_time_it_saw() -> None:
    """Late statuses (opens, clicks) keep their dispatch; then it goes."""
    join: Correlator[str] = Correlator(wait_ms=HOUR_MS, retention_ms=3 * HOUR_MS)
    join.dispatch(_dispatch("SM1", T0))
    join.advance(T0 + 2 * HOUR_MS)
    assert join.status(_held("SM1", T0 + 2 * HOUR_MS)) is not None  # a late status: kept 3 h more from here
    join.advance(T0 + 4 * HOUR_MS)
    join.expire()
    assert ("twilio", "SM1") in join.slots
    join.advance(T0 + 5 * HOUR_MS + 1)
    assert join.expire() == ([], [("twilio", "SM1")])


def test_a_restored_correlator_never_expires_earlier_than_the_one_it_replaces() -> None:
    """After a restart the watermark is rebuilt no later than it was."""
    join: Correlator[str] = Correlator(wait_ms=HOUR_MS)
    join.status(_held("SM1", T0))
    join.status(_held("SM2", T0 + 30 * 60_000))
    restored: Correlator[str] = Correlator(wait_ms=HOUR_MS, slots=dict(join.slots))
    restored.reindex()
    assert restored.watermark == T0 + 30 * 60_000
    assert restored.held_by_provider == {"twilio": 2}
    assert restored.expire() == ([], [])


def test_a_message_holds_a_bounded_number_of_statuses() -> None:
    """One changelog record per message stays small."""
    join: Correlator[str] = Correlator()
    for n in range(MAX_HELD_PER_MESSAGE):
        join.status(_held("SM1", T0, event_id=str(n)))
    join.status(_held("SM1", T0, event_id="0"))  # a redelivery is no new status
    with pytest.raises(OverflowError, match="256 statuses waiting"):
        join.status(_held("SM1", T0, event_id="one more"))


def test_changed_names_exactly_the_slots_to_persist() -> None:
    """The worker persists exactly the slots that changed."""
    join: Correlator[str] = Correlator()
    join.status(_held("SM1", T0))
    join.dispatch(_dispatch("SM2", T0))
    assert join.changed == {("twilio", "SM1"), ("twilio", "SM2")}
    join.changed.clear()
    assert join.held_by_provider == {"twilio": 1}
    released, _ = join.dispatch(_dispatch("SM1", T0))
    assert [r.status.message_id for r in released] == ["SM1"]
    assert join.held_by_provider == {"twilio": 0}
    assert join.slots[("twilio", "SM1")] == Slot(_dispatch("SM1", T0), (), T0)
    assert join.changed == {("twilio", "SM1")}


def test_unclaimed_statuses_travel_as_fields() -> None:
    """A held status survives its trip through the correlation topic unchanged."""
    (item,) = items_of(twilio("SM1", "delivered", 5), "twilio")
    assert isinstance(item, Held)
    assert Unclaimed.from_fields(orjson.loads(orjson.dumps(item.payload.fields()))) == item.payload


def test_a_busy_message_files_one_deadline_not_one_per_status() -> None:
    """The heap of deadlines stays about one entry per message however many statuses a dispatch sees."""
    join: Correlator[str] = Correlator(wait_ms=HOUR_MS, retention_ms=3 * HOUR_MS)
    join.dispatch(_dispatch("SM1", T0))
    for n in range(1000):
        join.advance(T0 + n * 1000)
        join.status(_held("SM1", T0 + n * 1000, event_id=str(n)))
        join.expire()
    assert len(join._deadlines) == 1
    join.advance(T0 + 999_000 + 3 * HOUR_MS + 1)
    assert join.expire() == ([], [("twilio", "SM1")])


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_the_live_correlator_expiring_after_every_record_agrees_with_the_offline_join(
    scenario: tuple[str, list[tuple[str, bytes]], dict[str, str]],
) -> None:
    """Within the wait nothing expires early; once the watermark passes it, exactly the unmatched go."""
    provider, records, _ = scenario
    expected, unmatched, _ = upfront(provider, records)
    join: Correlator[Unclaimed] = Correlator(wait_ms=HOUR_MS, retention_ms=HOUR_MS)
    events = []
    for kind, line in records:
        if kind == "d":
            dispatch = decode_dispatch(line)
            join.advance(dispatch.occurred_at)
            released, _ = join.dispatch(dispatch)
        else:
            released = []
            for item in items_of(line, provider):
                assert isinstance(item, Held)
                join.advance(item.occurred_at)
                joined = join.status(item)
                released += [] if joined is None else [joined]
        events += [event_from_envelope(claim(r.status.payload.envelope, r.dispatch)) for r in released]
        assert join.expire() == ([], [])
    join.advance(T0 + 3000 * 1000 + HOUR_MS + 1)
    gone, _ = join.expire()
    assert resolve_members(events) == expected
    assert sorted(h.event_id for h in gone) == sorted(unmatched)
    assert join.slots == {}


def test_a_messages_waiting_statuses_can_be_let_go_keeping_its_dispatch() -> None:
    """What the worker does with a slot too large for its changelog: the statuses go, counted out."""
    join: Correlator[str] = Correlator()
    join.status(_held("SM1", T0, event_id="a"))
    join.status(_held("SM1", T0, event_id="b"))
    assert [h.event_id for h in join.drop_held(("twilio", "SM1"))] == ["a", "b"]
    assert join.slots == {}
    assert join.held_by_provider == {"twilio": 0}
    assert join.drop_held(("twilio", "SM1")) == []
