"""Amazon SES event records, raw and inside SNS: every event and bounce type, tags, SNS confirmations."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.domain.model import Event
from stream.providers import ses
from tests.providers_support import decoded, letter, outcome

# One record per vocabulary entry, shaped as the event publishing examples
# (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-examples.html).
_BOUNCE = {"bouncedRecipients": [{"emailAddress": "r@example.com"}], "timestamp": "2025-01-01T12:00:09.000Z"}
CASES: dict[str | int, tuple[str, dict[str, Any], int, bool]] = {
    "Send": ("Send", {}, 2010, False),
    "Delivery": ("Delivery", {"timestamp": "2025-01-01T12:00:03.000Z", "smtpResponse": "250 2.6.0 ok"}, 2020, True),
    "Open": ("Open", {"timestamp": "2025-01-01T13:00:00.000Z", "userAgent": "Mozilla/5.0"}, 2030, True),
    "Click": ("Click", {"timestamp": "2025-01-01T13:01:00.000Z", "link": "https://survey.example/s/1"}, 2040, True),
    "Complaint": ("Complaint", {"timestamp": "2025-01-01T14:00:00.000Z", "complaintFeedbackType": "abuse"}, 3010, True),
    "Subscription": ("Subscription", {"timestamp": "2025-01-01T14:00:00.000Z"}, 3010, True),
    "Reject": ("Reject", {"reason": "Bad content"}, 5100, True),
    "Rendering Failure": (
        "Rendering Failure",
        {"errorMessage": "Attribute 'name' is not present", "templateName": "t"},
        5100,
        True,
    ),
    "DeliveryDelay": (
        "DeliveryDelay",
        {"delayType": "MailboxFull", "timestamp": "2025-01-01T12:10:00.000Z"},
        2010,
        False,
    ),
    "Bounce/Permanent": ("Bounce", {**_BOUNCE, "bounceType": "Permanent", "bounceSubType": "NewSubType"}, 5101, True),
    "Bounce/Permanent/General": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Permanent", "bounceSubType": "General"},
        5101,
        True,
    ),
    "Bounce/Permanent/NoEmail": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Permanent", "bounceSubType": "NoEmail"},
        5101,
        True,
    ),
    "Bounce/Permanent/Suppressed": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Permanent", "bounceSubType": "Suppressed"},
        4006,
        True,
    ),
    "Bounce/Permanent/OnAccountSuppressionList": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Permanent", "bounceSubType": "OnAccountSuppressionList"},
        4006,
        True,
    ),
    "Bounce/Transient": ("Bounce", {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "Other"}, 2010, False),
    "Bounce/Transient/General": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "General"},
        2010,
        False,
    ),
    "Bounce/Transient/MailboxFull": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "MailboxFull"},
        2010,
        False,
    ),
    "Bounce/Transient/MessageTooLarge": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "MessageTooLarge"},
        2010,
        False,
    ),
    "Bounce/Transient/ContentRejected": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "ContentRejected"},
        2010,
        False,
    ),
    "Bounce/Transient/AttachmentRejected": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "AttachmentRejected"},
        2010,
        False,
    ),
    "Bounce/Undetermined": ("Bounce", {**_BOUNCE, "bounceType": "Undetermined", "bounceSubType": "X"}, 5101, True),
    "Bounce/Undetermined/Undetermined": (
        "Bounce",
        {**_BOUNCE, "bounceType": "Undetermined", "bounceSubType": "Undetermined"},
        5101,
        True,
    ),
}
_OBJECT = {"Rendering Failure": "failure", "DeliveryDelay": "deliveryDelay"}


def record(event_type: str, details: dict[str, Any], tags: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Return an SES event publishing record, with the member_id message tag unless ``tags`` say otherwise."""
    return {
        "eventType": event_type,
        "mail": {
            "timestamp": "2025-01-01T12:00:00.000Z",
            "source": "survey@nps.example",
            "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
            "destination": ["r@example.com"],
            "tags": {"ses:configuration-set": ["cs"], "member_id": ["cm-1"], "campaign_id": ["c-9"]}
            if tags is None
            else tags,
        },
        _OBJECT.get(event_type, event_type[0].lower() + event_type[1:]): details,
    }


def sns(message: dict[str, Any]) -> dict[str, Any]:
    """Return an SES record as SNS delivers it: a Notification whose Message is the record as a string."""
    return {
        "Type": "Notification",
        "MessageId": "e4a8b1c5-0b1e-5f3c-9f3f-1d2b3c4d5e6f",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Message": orjson.dumps(message).decode(),
        "Timestamp": "2025-01-01T12:00:10.000Z",
        "SignatureVersion": "1",
    }


def test_the_table_covers_every_ses_event_and_bounce_type() -> None:
    """Each vocabulary entry has a documented record below."""
    assert set(ses.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "event_type", "details", "code", "final"), [(k, *v) for k, v in CASES.items()])
@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "sns"])
def test_an_ses_record_resolves_as_documented_raw_or_in_sns(
    key: str, event_type: str, details: dict[str, Any], code: int, final: bool, wrapped: bool
) -> None:
    """The event type, and for a bounce its type and sub-type, decide the outcome; SNS changes nothing."""
    body = record(event_type, details)

    assert (code, final) == outcome("ses", sns(body) if wrapped else body)


def test_raw_and_sns_delivery_of_one_record_are_one_event() -> None:
    """The event id derives from the record, not the SNS notification, so both count once."""
    body = record("Delivery", CASES["Delivery"][1])
    (raw,), (wrapped,) = decoded("ses", body), decoded("ses", sns(body))

    assert isinstance(raw, Event)
    assert raw == wrapped
    assert ("cm-1", "c-9") == (raw.member_id, raw.campaign_id)


def test_a_transient_bounce_never_beats_a_later_delivery() -> None:
    """SES soft bounces are temporary: a delivery after one decides."""
    from stream.domain.precedence import resolve

    bounce = decoded("ses", record("Bounce", {**_BOUNCE, "bounceType": "Transient", "bounceSubType": "MailboxFull"}))
    delivery = decoded("ses", record("Delivery", CASES["Delivery"][1]))
    state = None
    for event in [*bounce, *delivery]:
        assert isinstance(event, Event)
        state = resolve(state, event)

    assert state is not None
    assert (2020, True) == (state.status.outcome.code, state.final)


def test_an_sns_subscription_confirmation_is_dead_lettered_with_what_to_do() -> None:
    """No event: the letter names the SNS type and the SubscribeURL step."""
    body = {
        "Type": "SubscriptionConfirmation",
        "Token": "2336412f37",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
    }
    error = letter("ses", body).error

    assert ("unknown_status", "[0].Type") == (error.reason, error.field)
    assert "SubscribeURL" in error.message


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (record("Delivery", {}, tags={"campaign_id": ["c-9"]}), "missing_field", "[0].mail.tags.member_id"),
        ({"mail": {}}, "missing_field", "[0].eventType"),
        ({"Type": "Notification", "Message": "{not json"}, "malformed_json", "[0].Message"),
        (b"{not json", "malformed_json", ""),
        (b"42", "not_an_object", ""),
    ],
)
def test_a_bad_ses_body_is_dead_lettered_with_where(body: Any, reason: str, field: str) -> None:
    """No member tag, no event type, a broken SNS message, or a broken body: each says where."""
    error = letter("ses", body).error

    assert (reason, field) == (error.reason, error.field)
    if field.endswith("member_id"):
        assert "mail.tags.member_id" in error.message
