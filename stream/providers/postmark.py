"""
Postmark webhooks -> event envelopes.

A body is one JSON object whose ``RecordType`` says what it is: ``Delivery``, ``Bounce``,
``SpamComplaint``, ``Open``, ``Click`` or ``SubscriptionChange`` (a JSON array of them is read
too). The member: the ``Metadata`` we send with each message (``member_id``, optionally
``campaign_id``, ``message_type``), which Postmark hands back on every webhook.
"""

from __future__ import annotations

from typing import Any

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, COMPLAINT, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import (
    Result,
    envelope,
    json_items,
    message_id_as_sent,
    missing,
    no_member,
    not_an_object,
    ours,
    text,
)

NAME = "Postmark"
SOURCE = "postmark"
CHANNELS: tuple[str, ...] = ("email",)

# Record types: https://postmarkapp.com/developer/webhooks/webhooks-overview
# Bounce types: https://postmarkapp.com/developer/api/bounce-api#bounce-types
# A bounce is read as "Bounce/<Type>", a subscription change as "SubscriptionChange/<reason>".
VOCABULARY: Vocabulary = {
    "Delivery": (2020, FINAL),
    "Open": (2030, FINAL),
    "Click": (2040, FINAL),
    "SpamComplaint": COMPLAINT,
    "Bounce": (BOUNCED, FINAL),  # a bounce type this table does not name
    "Bounce/HardBounce": (BOUNCED, FINAL),
    # "Transient", "SoftBounce" (Postmark: "might also receive HardBounce later"), "DnsError" and
    # "ChallengeVerification" are temporary: they never beat a later delivery.
    "Bounce/Transient": (2010, TEMPORARY),
    "Bounce/SoftBounce": (2010, TEMPORARY),
    "Bounce/DnsError": (2010, TEMPORARY),
    "Bounce/ChallengeVerification": (2010, TEMPORARY),
    "Bounce/AutoResponder": (2020, FINAL),  # an out-of-office reply: the message arrived
    "Bounce/Unsubscribe": (3010, FINAL),  # an unsubscribe request by reply
    "Bounce/Subscribe": (2040, FINAL),  # a subscribe request by reply: the recipient acted on it
    "Bounce/SpamComplaint": COMPLAINT,
    "Bounce/AddressChange": (BOUNCED, FINAL),  # the recipient moved: this address is not read
    "Bounce/BadEmailAddress": (4005, FINAL),  # "Invalid email address": never sent
    "Bounce/ManuallyDeactivated": (4006, FINAL),  # the address is deactivated (suppressed) already
    "Bounce/SpamNotification": (PROVIDER_FAILED, FINAL),  # filtered as spam/bulk: our content
    "Bounce/VirusNotification": (PROVIDER_FAILED, FINAL),
    "Bounce/Blocked": (PROVIDER_FAILED, FINAL),  # an ISP blocked our sending
    "Bounce/DMARCPolicy": (PROVIDER_FAILED, FINAL),  # our domain's DMARC policy refused it
    "Bounce/Unconfirmed": (PROVIDER_FAILED, FINAL),  # our sender signature is not confirmed
    "Bounce/TemplateRenderingFailed": (PROVIDER_FAILED, FINAL),
    "Bounce/SMTPApiError": (PROVIDER_FAILED, FINAL),
    "Bounce/OpenRelayTest": (PROVIDER_FAILED, FINAL),
    "Bounce/InboundError": (PROVIDER_FAILED, FINAL),
    "Bounce/Unknown": (PROVIDER_FAILED, FINAL),
    # SuppressSending true, by SuppressionReason; false: the address was reactivated.
    "SubscriptionChange/ManualSuppression": (3010, FINAL),  # the unsubscribe link, or us on request
    "SubscriptionChange/SpamComplaint": COMPLAINT,
    "SubscriptionChange/HardBounce": (BOUNCED, FINAL),  # suppressed after the bounce it follows
    # Reactivated: as SendGrid's group_resubscribe, it cannot undo an unsubscribe in a join.
    "SubscriptionChange/Reactivated": (2040, FINAL),
}

_TIME_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")
_DETAIL_FIELDS = ("Type", "TypeCode", "Description", "Details", "SuppressionReason", "Origin", "MessageStream")


# The send API returns the id the provider's events name.
dispatch_message_id = message_id_as_sent


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one webhook body (or a JSON array of them): one event each.

    Raises:
        BadEventError: not JSON, or neither an object nor an array.

    """
    return [(record, _envelope(index, record)) for index, record in enumerate(json_items(body, "Postmark body"))]


def _envelope(index: int, record: object) -> dict[str, Any] | BadEventError:
    if not isinstance(record, dict):
        return not_an_object(NAME, index)
    record_type = text(record.get("RecordType"))
    if record_type is None:
        return missing(NAME, index, "RecordType", "record type")
    member = ours(record.get("Metadata"))
    message_id = text(record.get("MessageID"))
    occurred_at = next((record[field] for field in _TIME_FIELDS if record.get(field)), None)
    bounce_id = record.get("ID") if record_type in {"Bounce", "SpamComplaint"} else None
    event_id = f"{message_id}:{record_type}:{occurred_at}" if message_id else None
    built = envelope(
        source=SOURCE,
        channel="email",
        status=_status(record_type, record),
        occurred_at=occurred_at,
        member=member,
        event_id=f"bounce-{bounce_id}" if bounce_id else event_id,
        message_id=message_id,
        detail={field: record[field] for field in _DETAIL_FIELDS if field in record},
    )
    if "member_id" not in member:
        return no_member(NAME, index, "the message Metadata (Metadata.member_id)", "Metadata.member_id", built)
    return built


def _status(record_type: str, record: dict[str, Any]) -> str:
    if record_type == "Bounce":
        specific = f"Bounce/{record.get('Type')}"
        return specific if specific in VOCABULARY else "Bounce"
    if record_type == "SubscriptionChange":
        if record.get("SuppressSending") is False:
            return "SubscriptionChange/Reactivated"
        return f"SubscriptionChange/{record.get('SuppressionReason')}"
    return record_type
