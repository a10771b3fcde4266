"""Per-message resolution: the cases of issue 13, each as the README's rule says it resolves."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest

from stream.codec import event_from_envelope, state_document
from stream.domain.model import Event, MemberState
from stream.domain.precedence import resolve, resolve_members

_clock = iter(range(1_700_000_000_000, 1_800_000_000_000, 1000))


def event(source: str, status: str | int, channel: str | None = None, **fields: Any) -> Event:
    """Build a classified event of member m1, each one later than the previous."""
    envelope = {"member_id": "m1", "source": source, "status": status, "occurred_at": next(_clock), **fields}
    if channel:
        envelope["channel"] = channel
    return event_from_envelope(envelope)


def invitation(source: str, status: str | int, channel: str | None = None, message: str = "m-1") -> Event:
    """Build an event of the invitation message ``message``."""
    return event(source, status, channel, message_id=message, message_type="survey")


def reminder(source: str, status: str | int, channel: str | None = None, message: str = "m-2") -> Event:
    """Build an event of the reminder message ``message``."""
    return event(source, status, channel, message_id=message, message_type="reminder")


def state_after(*events: Event) -> MemberState:
    """Resolve events in the given order, and check every other way gives the same state."""
    state = reduce(resolve, events, None)
    assert state is not None
    assert state == reduce(resolve, reversed(events), None) == resolve_members(events)["m1"]
    return state


def code_after(*events: Event) -> int:
    """Return the AdditionStatus code after resolving events (in either order)."""
    return state_after(*events).status.outcome.code


# --- 1. A reminder's failure never overwrites the survey's outcome ----------------------------------


def test_a_failed_reminder_leaves_the_delivered_survey_delivered() -> None:
    """SMPP DELIVRD for the survey, then stat:EXPIRED for the reminder: still 2020."""
    assert 2020 == code_after(invitation("smpp", "stat:DELIVRD err:000"), reminder("smpp", "stat:EXPIRED err:000"))


def test_a_bounced_reminder_leaves_the_delivered_email_delivered_and_shows_on_no_member_status() -> None:
    """SendGrid delivered, then a bounced reminder: 2020, and the reminder's own outcome is 2051."""
    state = state_after(invitation("sendgrid", "delivered"), reminder("sendgrid", "bounce"))
    messages = dict(state.messages)

    assert (2020, 2051, 5101) == (
        state.status.outcome.code,
        messages["email#m-2"].contribution.outcome.code,
        messages["email#m-2"].best.outcome.code,
    )


def test_a_failed_reminder_alone_is_2051_and_a_sent_one_2050() -> None:
    """What a reminder says about the member: Reminded, or ReminderFailed."""
    assert 2051 == code_after(invitation("smpp", "ENROUTE"), reminder("smpp", "UNDELIV"))
    assert 2050 == code_after(invitation("smpp", "ENROUTE"), reminder("smpp", "DELIVRD"))


def test_the_seeds_remider_spelling_makes_a_reminder_instead_of_a_dead_letter() -> None:
    """message_type "remider" (seed 001's spelling) is a reminder."""
    assert 2020 == code_after(
        invitation("sendgrid", "delivered"),
        event("sendgrid", "bounce", message_id="m-2", message_type="remider"),
    )


def test_a_message_is_a_reminder_if_any_of_its_events_says_so() -> None:
    """A delivery receipt without message_type belongs to the reminder its dispatch event named."""
    assert 2020 == code_after(
        invitation("smpp", "DELIVRD"),
        reminder("npstoday-sms", 1),
        event("smpp", "stat:UNDELIV err:000", message_id="m-2"),
    )


# --- 2. nps.today's own decisions decide only members nothing was sent to ---------------------------


@pytest.mark.parametrize(
    ("events", "code"),
    [
        # A delivered survey, then the reminder's CancelledEndedCampaign: not 4007.
        ((("sendgrid", "delivered", None, "survey"), ("npstoday-email", 8, None, "reminder")), 2020),
        # A bounce, then the reminder's CancelledInactive (4006): the bounce shows.
        ((("sendgrid", "bounce", None, "survey"), ("npstoday-email", 6, None, "reminder")), 5101),
        # A delivered IdSurvey SMS, then a resend refused as Duplicated: still delivered.
        ((("idsurvey", "Delivered", None, "survey"), ("idsurvey", "Duplicated", None, "manualResend")), 2020),
        # nps.today's Duplicate on the survey channel after a delivery: delivered.
        ((("smpp", "DELIVRD", None, None), ("npstoday", "Duplicate", None, None)), 2020),
        # Nothing sent at all: nps.today's decision is the status.
        ((("npstoday", "scheduled", None, None), ("npstoday", "Throttled", None, None)), 4002),
    ],
)
def test_nps_today_decisions_decide_only_members_nothing_was_sent_to(
    events: tuple[tuple[str, str | int, str | None, str | None], ...], code: int
) -> None:
    """4xxx ranks below any sign of a send, with or without message ids."""
    built = [event(source, status, channel, message_type=kind) for source, status, channel, kind in events]

    assert code == code_after(*built)


# --- 3. A failure on one channel never beats a delivery on another -----------------------------------


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (("dce", "FALLBACK", "rcs"), 5000),  # "some other delivery method will be used"
        (("imgw", "not-whatsapp-user", "whatsapp"), 5001),
        (("sendgrid", "bounce", None), 5101),
    ],
)
def test_a_delivery_on_one_channel_outranks_a_failure_on_another(
    failure: tuple[str, str, str | None], code: int
) -> None:
    """The failed channel keeps its own status; the member shows the delivery."""
    failed = event(*failure)
    state = state_after(failed, event("smpp", "DELIVRD"))
    channels = dict(state.channels)

    assert (2020, code) == (state.status.outcome.code, channels[failed.channel].outcome.code)


def test_with_message_ids_a_fallback_on_the_same_id_is_still_another_message() -> None:
    """Message ids are scoped by channel: RCS FALLBACK and the SMS it fell back to, one id."""
    assert 2020 == code_after(
        event("dce", "FALLBACK", "rcs", message_id="x"), event("dce", "DELIVRD", "sms", message_id="x")
    )


# --- 4. Within a message, failures still beat "delivered"; rejected duplicate submits do not ---------


def test_an_asynchronous_bounce_after_delivered_shows_the_bounce() -> None:
    """Same message: the bounce report wins."""
    assert 5101 == code_after(invitation("sendgrid", "delivered"), invitation("sendgrid", "bounce"))


def test_a_rejected_duplicate_submit_does_not_overwrite_a_delivery() -> None:
    """The IM gateway: ok, delivered, then error-id-not-unique: 2020."""
    assert 2020 == code_after(event("imgw", "ok"), event("imgw", "delivered"), event("imgw", "error-id-not-unique"))


def test_two_invitation_messages_on_one_channel_a_delivery_beats_the_other_bounce() -> None:
    """Across messages (a manual resend), the delivered one decides."""
    assert 2020 == code_after(
        invitation("sendgrid", "bounce", message="m-1"), invitation("sendgrid", "delivered", message="m-3")
    )


# --- 5. Events without a message id ---------------------------------------------------------------


def test_events_without_a_message_id_share_their_channels_implicit_message() -> None:
    """No message ids: the channel's invitation events are one message, reminders another."""
    state = state_after(
        event("sendgrid", "delivered"),
        event("sendgrid", "bounce"),
        event("sendgrid", "bounce", message_type="reminder"),
        event("smpp", "DELIVRD"),
    )

    assert ["email", "email~reminder", "sms"] == [key for key, _ in state.messages]
    assert (2020, 5101) == (state.status.outcome.code, dict(state.channels)["email"].outcome.code)


def test_the_public_document_is_unchanged_in_shape() -> None:
    """Messages stay internal: the published state has the documented fields only."""
    document = state_document(state_after(invitation("sendgrid", "delivered"), reminder("sendgrid", "bounce")))

    assert ["campaign_id", "channels", "events", "final", "member_id", "status", "updated_at"] == sorted(document)
    assert {"code": 2020, "shortcode": "Delivered", "range": "delivery"} == document["status"]


def test_only_spam_complaints_count_as_complaints() -> None:
    """Over every vocabulary entry: a complaint is exactly an entry mapped to vocab.COMPLAINT."""
    from stream.domain import vocab
    from stream.domain.classify import classify
    from stream.domain.milestones import is_complaint

    found = {
        (source, channel, str(status))
        for source, channels in vocab.SOURCE_CHANNELS.items()
        for channel in channels
        for status in vocab.table(source, channel)
        if is_complaint(
            channel, classify(source, channel, status).code, classify(source, channel, status).channel_status
        )
    }

    assert {
        ("dce", "email", "COMPLAINED"),
        ("sendgrid", "email", "spamreport"),
        ("mailgun", "email", "complained"),
        ("postmark", "email", "SpamComplaint"),
        ("postmark", "email", "Bounce/SpamComplaint"),
        ("postmark", "email", "SubscriptionChange/SpamComplaint"),
        ("ses", "email", "Complaint"),
    } == found
