"""
Amazon SES event publishing records -> event envelopes.

A body is one record, raw (as SES writes it to Firehose/EventBridge) or inside an Amazon SNS
``Notification`` whose ``Message`` is the record as a JSON string; a JSON array of such bodies
is read too. SES notifications without event publishing name the type ``notificationType``
instead of ``eventType``; both are read. The member: the message tags we send with each email
(``member_id``, optionally ``campaign_id``, ``message_type``), which SES hands back in
``mail.tags`` as lists of strings.

An SNS ``SubscriptionConfirmation`` (or ``UnsubscribeConfirmation``) is no SES event: it is
dead-lettered (``unknown_status`` in field ``Type``), so it is seen, counted and alerted on,
and its letter holds the ``SubscribeURL`` someone must visit to confirm the subscription.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, COMPLAINT, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import Result, as_dict, envelope, json_items, missing, no_member, not_an_object, ours, text

NAME = "SES"
SOURCE = "ses"
CHANNELS: tuple[str, ...] = ("email",)

# Event types: https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
# Bounce types: https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types
# A bounce is read as "Bounce/<bounceType>/<bounceSubType>", else "Bounce/<bounceType>".
VOCABULARY: Vocabulary = {
    "Send": (2010, TEMPORARY),  # accepted; SES will try to deliver
    "Delivery": (2020, FINAL),
    "Open": (2030, FINAL),
    "Click": (2040, FINAL),
    "Complaint": COMPLAINT,  # marked as spam: the strongest unsubscribe
    "Subscription": (3010, FINAL),  # the recipient used List-Unsubscribe or the unsubscribe link
    "Reject": (PROVIDER_FAILED, FINAL),  # SES found a virus: our content, never sent
    "Rendering Failure": (PROVIDER_FAILED, FINAL),  # our template could not be rendered
    "DeliveryDelay": (2010, TEMPORARY),  # SES keeps trying; a delivery or a bounce follows
    "Bounce/Permanent": (BOUNCED, FINAL),  # a hard bounce of a sub-type this table does not name
    "Bounce/Permanent/General": (BOUNCED, FINAL),
    "Bounce/Permanent/NoEmail": (BOUNCED, FINAL),  # the address does not exist
    # SES did not send: the address is on its global or our account's suppression list already.
    "Bounce/Permanent/Suppressed": (4006, FINAL),
    "Bounce/Permanent/OnAccountSuppressionList": (4006, FINAL),
    # Transient bounces are soft: SES documents them as temporary, so they never beat a later
    # delivery (every temporary outcome ranks below every final one): 2010, temporary.
    "Bounce/Transient": (2010, TEMPORARY),
    "Bounce/Transient/General": (2010, TEMPORARY),
    "Bounce/Transient/MailboxFull": (2010, TEMPORARY),
    "Bounce/Transient/MessageTooLarge": (2010, TEMPORARY),
    "Bounce/Transient/ContentRejected": (2010, TEMPORARY),
    "Bounce/Transient/AttachmentRejected": (2010, TEMPORARY),
    # "SES was unable to determine a specific bounce reason": the message still came back undelivered.
    "Bounce/Undetermined": (BOUNCED, FINAL),
    "Bounce/Undetermined/Undetermined": (BOUNCED, FINAL),
}

# The object holding each event type's details (and its timestamp).
_DETAIL_OBJECT = {
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Delivery": "delivery",
    "Send": "send",
    "Reject": "reject",
    "Open": "open",
    "Click": "click",
    "Rendering Failure": "failure",
    "DeliveryDelay": "deliveryDelay",
    "Subscription": "subscription",
}
_DETAIL_FIELDS = (
    "bounceType",
    "bounceSubType",
    "complaintFeedbackType",
    "delayType",
    "reason",
    "errorMessage",
    "templateName",
    "smtpResponse",
    "link",
)
_SNS_NOT_EVENTS = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one SES record (raw or in an SNS Notification), or a JSON array of them.

    Raises:
        BadEventError: not JSON, not an object, an SNS subscription message, or an SNS
            Notification whose Message is not an SES record.

    """
    records = json_items(body, "SES body")
    return [(record, _envelope(index, record)) for index, record in enumerate(records)]


def _unwrap(index: int, record: object) -> dict[str, Any] | BadEventError:
    # The SES record itself, whether it came raw or as an SNS Notification's Message.
    if not isinstance(record, dict):
        return not_an_object(NAME, index)
    sns_type = record.get("Type")
    if sns_type in _SNS_NOT_EVENTS:
        return BadEventError(
            "unknown_status",
            f"[{index}].Type",
            f"an SNS {sns_type}, not an SES event: confirm the subscription by visiting its SubscribeURL",
        )
    if sns_type != "Notification":
        return record
    try:
        message = orjson.loads(record.get("Message") or b"")
    except (orjson.JSONDecodeError, TypeError):
        return BadEventError("malformed_json", f"[{index}].Message", "SNS Message is not an SES record as JSON")
    if not isinstance(message, dict):
        return BadEventError("not_an_object", f"[{index}].Message", "SNS Message is not an SES record")
    return message


def _envelope(index: int, body: object) -> dict[str, Any] | BadEventError:
    record = _unwrap(index, body)
    if isinstance(record, BadEventError):
        return record
    event_type = text(record.get("eventType")) or text(record.get("notificationType"))
    if event_type is None:
        return missing(NAME, index, "eventType", "event type")
    mail = as_dict(record.get("mail"))
    member = ours(mail.get("tags"))
    if "member_id" not in member:
        return no_member(NAME, index, "the message tags (mail.tags.member_id)", "mail.tags.member_id")
    details = as_dict(record.get(_DETAIL_OBJECT.get(event_type, "")))
    message_id = text(mail.get("messageId"))
    occurred_at = details.get("timestamp") or mail.get("timestamp")
    return envelope(
        source=SOURCE,
        channel="email",
        status=_status(event_type, details),
        occurred_at=occurred_at,
        member=member,
        event_id=f"{message_id}:{event_type}:{occurred_at}" if message_id else None,
        message_id=message_id,
        detail={field: details[field] for field in _DETAIL_FIELDS if field in details},
    )


def _status(event_type: str, details: dict[str, Any]) -> str:
    if event_type != "Bounce":
        return event_type
    kind = f"Bounce/{details.get('bounceType')}"
    specific = f"{kind}/{details.get('bounceSubType')}"
    return specific if specific in VOCABULARY else kind
