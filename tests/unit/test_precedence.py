"""Each precedence rule of the README, as one test: which outcome decides a member's status."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest

from stream.codec import event_from_envelope, state_document
from stream.domain import vocab
from stream.domain.classify import classify
from stream.domain.model import Event, MemberState
from stream.domain.precedence import PRECEDENCE, RANK, resolve

_clock = iter(range(1_700_000_000_000, 1_800_000_000_000, 1000))


def event(source: str, status: str | int, channel: str | None = None, **fields: Any) -> Event:
    """Build a classified event of member m1, each one later than the previous."""
    envelope = {"member_id": "m1", "source": source, "status": status, "occurred_at": next(_clock), **fields}
    if channel:
        envelope["channel"] = channel
    return event_from_envelope(envelope)


def state_after(*events: Event) -> MemberState:
    """Resolve events in the given order."""
    state = reduce(resolve, events, None)
    assert state is not None
    return state


def code_after(*events: Event) -> int:
    """Return the AdditionStatus code after resolving events in the given order."""
    return state_after(*events).status.outcome.code


def test_completed_overrides_opened_in_either_order() -> None:
    """An answer outranks engagement, whichever arrives first."""
    opened, completed = event("sendgrid", "open"), event("npstoday", "Completed")

    assert 2600 == code_after(opened, completed) == code_after(completed, opened)


def test_answers_are_never_undone_by_delivery_events() -> None:
    """Late delivery reports and even bounces leave a rated/commented/completed member answered."""
    for answer in ("Rated", "Commented", "Completed"):
        answered = event("npstoday", answer)
        later = [event("sendgrid", s) for s in ("processed", "delivered", "bounce", "deferred")]

        assert answered.decision.outcome.code == code_after(answered, *later)


def test_a_late_delivered_never_undoes_clicked() -> None:
    """Clicked stays clicked when the delivery receipt arrives after the click."""
    assert 2040 == code_after(event("sendgrid", "click"), event("sendgrid", "delivered"))


def test_engagement_proves_delivery_and_beats_a_delivery_failure() -> None:
    """Opened (or read) after a bounce report shows as opened, in either order."""
    bounce, opened = event("dce", "BOUNCED", "email"), event("dce", "OPEN", "email")
    failed, read = event("imgw", "failed", "whatsapp"), event("imgw", "read", "whatsapp")

    assert 2030 == code_after(bounce, opened) == code_after(opened, bounce)
    assert 2030 == code_after(failed, read) == code_after(read, failed)


def test_a_temporary_outcome_never_overrides_a_final_one() -> None:
    """An in-transit report arriving after a final outcome changes nothing but the event count."""
    delivered = event("idsurvey", "Delivered")
    late = state_after(delivered, event("idsurvey", "Buffered"), event("idsurvey", "Enroute"))

    assert (2020, True, 3) == (late.status.outcome.code, late.final, late.events)


def test_a_failure_after_a_mere_sent_shows_as_the_failure() -> None:
    """Sent, then undeliverable: the member shows the provider's bounce."""
    assert 5201 == code_after(event("smpp", "ENROUTE"), event("smpp", "UNDELIV"))


def test_a_bounce_after_delivered_shows_the_bounce() -> None:
    """An asynchronous bounce is later and more specific news than the delivery report."""
    assert 5101 == code_after(event("sendgrid", "delivered"), event("sendgrid", "bounce"))


def test_duplicates_change_nothing_at_all() -> None:
    """Re-applying an event returns the very same state object."""
    delivered = event("smpp", "DELIVRD", event_id="r1")
    state = state_after(delivered)

    assert state is resolve(state, delivered)


def test_among_equal_outcomes_the_earliest_event_decides_updated_at() -> None:
    """Two delivery receipts: the status holds since the first one."""
    first, second = event("smpp", "DELIVRD"), event("smpp", "DELIVRD")

    assert first.decision.occurred_at == state_after(second, first).status.occurred_at


def test_each_channel_keeps_its_own_resolved_status() -> None:
    """An SMS bounce does not hide that the email was opened, and vice versa."""
    state = state_after(event("smpp", "UNDELIV"), event("sendgrid", "open"))
    channels = state_document(state)["channels"]

    assert ({"code": 2, "shortcode": "Cancelled", "final": True}, 2) == (channels["sms"], channels["email"]["code"])


def test_every_temporary_outcome_ranks_below_every_final_outcome() -> None:
    """The structural guarantee behind 'temporary never overrides final', over every vocabulary."""
    outcomes = [
        classify(source, channel, status)
        for source, channels in vocab.SOURCE_CHANNELS.items()
        for channel in channels
        for status in vocab.table(source, channel)
    ]
    highest_temporary = max(RANK[o.code] for o in outcomes if not o.final)
    lowest_final = min(RANK[o.code] for o in outcomes if o.final)

    assert highest_temporary < lowest_final


def test_within_a_message_a_refusal_beats_a_handover_but_never_a_delivery() -> None:
    """SendGrid processed then dropped shows the drop; delivered then a refused resubmit stays delivered."""
    processed, dropped = event("sendgrid", "processed"), event("sendgrid", "dropped/Bounced Address")
    delivered, refused = event("imgw", "delivered"), event("imgw", "error-id-not-unique")

    assert 4006 == code_after(processed, dropped) == code_after(dropped, processed)
    assert 2020 == code_after(delivered, refused) == code_after(refused, delivered)


def test_the_precedence_table_ranks_every_addition_status_once() -> None:
    """No code is missing from the order, none appears twice."""
    from stream.domain.catalog import ADDITION_BY_CODE

    assert sorted(ADDITION_BY_CODE) == sorted(PRECEDENCE)


@pytest.mark.parametrize(
    ("weaker", "stronger"),
    [
        (0, 10),
        (10, 2010),
        (2010, 2050),
        (2050, 2051),
        (2051, 4000),
        (4000, 4001),
        (4006, 2020),
        (2020, 5000),
        (5000, 5001),
        (5202, 4004),
        (4004, 4005),
        (5202, 2030),
        (4006, 2030),
        (2030, 2040),
        (2040, 3010),
        (3010, 2510),
        (2510, 2520),
        (2520, 2600),
        (2600, 2701),
        (2701, 2702),
    ],
)
def test_the_rank_order_is_the_documented_one(weaker: int, stronger: int) -> None:
    """Pairwise, within one message: the README's rank table, checked through resolve in both orders."""
    a, b = event("npstoday", weaker), event("npstoday", stronger)

    assert stronger == code_after(a, b) == code_after(b, a)
