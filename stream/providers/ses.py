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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, COMPLAINT, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import (
    Result,
    as_dict,
    envelope,
    json_items,
    message_id_as_sent,
    missing,
    no_member,
    not_an_object,
    ours,
    text,
)
from stream.providers.signing import ACCEPTED, Verdict, b64decode, refused

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

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


# The send API returns the id the provider's events name.
dispatch_message_id = message_id_as_sent


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
    details = as_dict(record.get(_DETAIL_OBJECT.get(event_type, "")))
    message_id = text(mail.get("messageId"))
    occurred_at = details.get("timestamp") or mail.get("timestamp")
    built = envelope(
        source=SOURCE,
        channel="email",
        status=_status(event_type, details),
        occurred_at=occurred_at,
        member=member,
        event_id=f"{message_id}:{event_type}:{occurred_at}" if message_id else None,
        message_id=message_id,
        detail={field: details[field] for field in _DETAIL_FIELDS if field in details},
    )
    if "member_id" not in member:
        return no_member(NAME, index, "the message tags (mail.tags.member_id)", "mail.tags.member_id", built)
    return built


def _status(event_type: str, details: dict[str, Any]) -> str:
    if event_type != "Bounce":
        return event_type
    kind = f"Bounce/{details.get('bounceType')}"
    specific = f"{kind}/{details.get('bounceSubType')}"
    return specific if specific in VOCABULARY else kind


# --- SNS message signatures ------------------------------------------------------------------------
# https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html: the string to
# sign is "<name>\n<value>\n" for each of these fields the message has, in this order (Subject
# only when present); SignatureVersion 1 signs it with SHA1withRSA, 2 with SHA256withRSA; the
# signature is base64. The signing certificate is the one configured (STATUSFLOW_SNS_CERT_FILE),
# never the SigningCertURL the message names: a forged message would name a certificate of its own.
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_OPTIONAL = frozenset({"Subject"})
_HASHES = {"1": "SHA1", "2": "SHA256"}  # SignatureVersion -> the hash of SHA1withRSA / SHA256withRSA


def load_certificates(pem: bytes) -> list[rsa.RSAPublicKey]:
    """
    Return the RSA public keys of the PEM certificates in ``pem`` (several while AWS rotates its certificate).

    Raises:
        ValueError: no certificate, one that does not parse, or one without an RSA key.

    """
    from cryptography import x509  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise ValueError(f"not PEM X.509 certificates ({error})") from None
    keys = []
    for certificate in certificates:
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"certificate {certificate.subject.rfc4514_string()!r} has no RSA key")  # noqa: TRY004 - a bad setting, reported as one
        keys.append(key)
    return keys


def string_to_sign(message: dict[str, Any]) -> bytes | None:
    """Return the canonical string SNS signs for ``message``, or None if a field it needs is missing."""
    fields = _SIGNED_FIELDS.get(message.get("Type", ""))
    if fields is None:
        return None
    parts = []
    for name in fields:
        value = message.get(name)
        if value is None and name in _OPTIONAL:
            continue
        if not isinstance(value, str):
            return None
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def verify_signature(body: bytes, keys: Sequence[rsa.RSAPublicKey]) -> Verdict:
    """
    Check the SNS signature of ``body`` (a Notification or a (Un)SubscriptionConfirmation) against ``keys``.

    Only SNS-signed bodies are accepted over HTTP: a raw SES record (as SES writes it to Firehose or
    EventBridge) carries no signature, so it goes through ``statusflow produce`` instead.
    """
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it

    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return refused("the body is not JSON, so not an SNS message")
    if not isinstance(message, dict) or message.get("Type") not in _SIGNED_FIELDS:
        return refused("not an SNS Notification or subscription message (only SNS-signed bodies are accepted)")
    hash_name = _HASHES.get(str(message.get("SignatureVersion", "")))
    if hash_name is None:
        return refused(f"SignatureVersion {str(message.get('SignatureVersion'))[:10]!r} is not 1 or 2")
    signature = b64decode(str(message.get("Signature", "")))
    canonical = string_to_sign(message)
    if not signature or canonical is None:
        return refused("the SNS message lacks its Signature or a signed field")
    for key in keys:
        try:
            key.verify(signature, canonical, padding.PKCS1v15(), getattr(hashes, hash_name)())
        except InvalidSignature:
            continue
        return ACCEPTED
    return refused("SNS signature does not match the certificate in STATUSFLOW_SNS_CERT_FILE")
