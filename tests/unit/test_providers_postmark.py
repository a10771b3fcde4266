"""Postmark webhooks: every record type, bounce type and subscription change, Metadata, bad bodies."""

from __future__ import annotations

from typing import Any

import pytest

from stream.domain.model import Event
from stream.providers import postmark
from tests.providers_support import decoded, letter, outcome

_BOUNCE_TYPES = {
    "HardBounce": (1, 5101, True),
    "Transient": (2, 2010, False),
    "Unsubscribe": (16, 3010, True),
    "Subscribe": (32, 2040, True),
    "AutoResponder": (64, 2020, True),
    "AddressChange": (128, 5101, True),
    "DnsError": (256, 2010, False),
    "SpamNotification": (512, 5100, True),
    "OpenRelayTest": (1024, 5100, True),
    "Unknown": (2048, 5100, True),
    "SoftBounce": (4096, 2010, False),
    "VirusNotification": (8192, 5100, True),
    "ChallengeVerification": (16384, 2010, False),
    "BadEmailAddress": (100000, 4005, True),
    "SpamComplaint": (100001, 3010, True),
    "ManuallyDeactivated": (100002, 4006, True),
    "Unconfirmed": (100003, 5100, True),
    "Blocked": (100006, 5100, True),
    "SMTPApiError": (100007, 5100, True),
    "InboundError": (100008, 5100, True),
    "DMARCPolicy": (100009, 5100, True),
    "TemplateRenderingFailed": (100010, 5100, True),
}

# One webhook per vocabulary entry, shaped as Postmark's webhook docs show them
# (https://postmarkapp.com/developer/webhooks/webhooks-overview).
CASES: dict[str | int, tuple[dict[str, Any], int, bool]] = {
    "Delivery": (
        {"RecordType": "Delivery", "DeliveredAt": "2025-01-01T12:00:05Z", "Details": "Test delivery"},
        2020,
        True,
    ),
    "Open": ({"RecordType": "Open", "ReceivedAt": "2025-01-01T13:00:00Z", "FirstOpen": True}, 2030, True),
    "Click": (
        {"RecordType": "Click", "ReceivedAt": "2025-01-01T13:01:00Z", "OriginalLink": "https://s.example"},
        2040,
        True,
    ),
    "SpamComplaint": (
        {"RecordType": "SpamComplaint", "ID": 7, "Type": "SpamComplaint", "BouncedAt": "2025-01-02T00:00:00Z"},
        3010,
        True,
    ),
    "Bounce": (
        {"RecordType": "Bounce", "ID": 1, "Type": "SomethingNew", "BouncedAt": "2025-01-01T12:00:09Z"},
        5101,
        True,
    ),
    **{
        f"Bounce/{kind}": (
            {
                "RecordType": "Bounce",
                "ID": 4_323_372_036,
                "Type": kind,
                "TypeCode": type_code,
                "BouncedAt": "2025-01-01T12:00:09Z",
            },
            code,
            final,
        )
        for kind, (type_code, code, final) in _BOUNCE_TYPES.items()
    },
    **{
        f"SubscriptionChange/{reason}": (
            {
                "RecordType": "SubscriptionChange",
                "ChangedAt": "2025-01-03T00:00:00Z",
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": reason,
            },
            code,
            True,
        )
        for reason, code in (("ManualSuppression", 3010), ("SpamComplaint", 3010), ("HardBounce", 5101))
    },
    "SubscriptionChange/Reactivated": (
        {
            "RecordType": "SubscriptionChange",
            "ChangedAt": "2025-01-04T00:00:00Z",
            "Origin": "Recipient",
            "SuppressSending": False,
            "SuppressionReason": None,
        },
        2040,
        True,
    ),
}


def webhook(fields: dict[str, Any], metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Return a webhook body with the common fields and our Metadata."""
    return {
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "outbound",
        "Recipient": "respondent@example.com",
        "Tag": "survey",
        "Metadata": {"member_id": "cm-1", "campaign_id": "c-9"} if metadata is None else metadata,
        **fields,
    }


def test_the_table_covers_every_postmark_record_bounce_type_and_change() -> None:
    """Each vocabulary entry has a documented webhook below."""
    assert set(postmark.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "fields", "code", "final"), [(k, *v) for k, v in CASES.items()])
def test_a_postmark_webhook_resolves_as_documented(key: str, fields: dict[str, Any], code: int, final: bool) -> None:
    """RecordType, and the bounce Type or SuppressionReason, decide the outcome."""
    assert (code, final) == outcome("postmark", webhook(fields))


def test_a_postmark_bounce_is_identified_by_its_bounce_id_and_keeps_the_message_id() -> None:
    """The bounce ID is the event id; MessageID the message id; Metadata the member."""
    (event,) = decoded("postmark", webhook(CASES["Bounce/HardBounce"][0]))

    assert isinstance(event, Event)
    assert ("cm-1", "c-9", "postmark:bounce-4323372036") == (event.member_id, event.campaign_id, event.event_id)


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (webhook(CASES["Delivery"][0], metadata={}), "missing_field", "[0].Metadata.member_id"),
        ({"MessageID": "x", "Metadata": {"member_id": "cm-1"}}, "missing_field", "[0].RecordType"),
        ([7], "not_an_object", "[0]"),
        (b"true", "not_an_object", ""),
        (b"{", "malformed_json", ""),
    ],
)
def test_a_bad_postmark_body_is_dead_lettered_with_where(body: Any, reason: str, field: str) -> None:
    """No member, no record type, or a broken body: each says where."""
    error = letter("postmark", body).error

    assert (reason, field) == (error.reason, error.field)
