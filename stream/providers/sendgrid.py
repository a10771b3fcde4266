"""
SendGrid Event Webhook bodies -> event envelopes.

A body is a JSON array of events (a single object is read as one). The member comes from the
custom args we send with each message, which SendGrid puts at the top level of every event:
``member_id`` (required), ``campaign_id`` and ``message_type`` (optional). The recipient's address
is deliberately not copied: the resolved state never holds personal data.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, COMPLAINT, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import Result, envelope, json_items, no_member, not_an_object, ours
from stream.providers.signing import ACCEPTED, Verdict, b64decode, header, refused

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

NAME = "SendGrid"
SOURCE = "sendgrid"
CHANNELS: tuple[str, ...] = ("email",)

# https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (event names, drop reasons)
VOCABULARY: Vocabulary = {
    "processed": (2010, TEMPORARY),
    "deferred": (2010, TEMPORARY),  # the receiving server said "later"; SendGrid retries
    "bounce": (BOUNCED, FINAL),  # type "bounce": the receiving server rejected the address for good
    "blocked": (PROVIDER_FAILED, FINAL),  # type "blocked": rejected for the message/sender, not the address
    # "dropped" with its reason (statuses "dropped/<reason>" below); another reason ("Invalid SMTPAPI
    # header", "Spam Content", "Recipient List over Package Quota") is our request, content or quota.
    "dropped": (PROVIDER_FAILED, FINAL),
    "dropped/Invalid": (4005, FINAL),  # "Invalid": not an email address; no delivery attempt was made
    "dropped/Bounced Address": (4006, FINAL),  # already on the bounce list: suppressed before sending
    "dropped/Unsubscribed Address": (4006, FINAL),
    "dropped/Spam Reporting Address": (4006, FINAL),
    "delivered": (2020, FINAL),
    "open": (2030, FINAL),
    "click": (2040, FINAL),
    "spamreport": COMPLAINT,
    "unsubscribe": (3010, FINAL),
    "group_unsubscribe": (3010, FINAL),
    # Done from the preference page the email links to. A join cannot undo an unsubscribe, and
    # re-subscribing restores future mail, not this participation: it proves a click, nothing more.
    "group_resubscribe": (2040, FINAL),
}

_DROP_REASONS = {
    key.split("/", 1)[1].lower(): key for key in VOCABULARY if isinstance(key, str) and key.startswith("dropped/")
}

# Event fields worth keeping as the envelope's detail (reasons, bounce type, SMTP response).
_DETAIL_FIELDS = ("reason", "type", "status", "response", "attempt", "bounce_classification", "url", "asm_group_id")


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Split one webhook body into envelopes, one per event, in order.

    Returns:
        For each event, the event as sent and either its envelope or the error that makes it
        unusable, so one bad event does not take its neighbours down with it (and its dead letter
        can carry that event alone, not the whole body).

    Raises:
        BadEventError: the body as a whole is not a JSON array (or a single event object).

    """
    return [(event, _envelope(index, event)) for index, event in enumerate(json_items(body, "SendGrid body"))]


def _envelope(index: int, event: object) -> dict[str, Any] | BadEventError:
    if not isinstance(event, dict):
        return not_an_object(NAME, index)
    name = event.get("event")
    if not isinstance(name, str) or not name:
        return BadEventError("missing_field", f"[{index}].event", f"SendGrid event {index} has no event name")
    member = ours(event)
    built = envelope(
        source=SOURCE,
        channel="email",
        status=_status(name, event),
        occurred_at=event.get("timestamp"),
        member=member,
        event_id=event.get("sg_event_id"),
        message_id=event.get("sg_message_id"),
        detail={field: event[field] for field in _DETAIL_FIELDS if field in event},
    )
    if "member_id" not in member:
        return no_member(NAME, index, "the custom args (member_id at the event's top level)", "member_id", built)
    return built


def dispatch_message_id(message_id: str) -> str:
    """
    Return the ``X-Message-Id`` the send API returned: the prefix of an event's ``sg_message_id``.

    An event's ``sg_message_id`` is that id, a dot and what SendGrid's filter adds
    (``14c5d75ce93.dfd.64b469.filter0001…`` names ``14c5d75ce93``); an id without a dot is itself.
    """
    return message_id.split(".", 1)[0]


def _status(name: str, event: dict[str, Any]) -> str:
    # A "bounce" event is a bounce or a block, as "type" says; a drop is read with its reason.
    if name == "bounce" and event.get("type") == "blocked":
        return "blocked"
    reason = event.get("reason")
    if name == "dropped" and isinstance(reason, str):
        return _DROP_REASONS.get(reason.strip().lower(), name)
    return name


# --- The signed Event Webhook ----------------------------------------------------------------------
# https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
# SendGrid signs the timestamp header followed by the raw body with ECDSA (P-256, SHA-256); the
# signature header is the base64 DER signature; the verification key, as Mail Settings shows it, is
# the base64 DER of the public key (SubjectPublicKeyInfo), without PEM armour.
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@lru_cache(maxsize=4)
def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """
    Load the verification key as SendGrid shows it (base64 DER; a PEM block is read too).

    Raises:
        ValueError: not a base64 DER or PEM elliptic-curve public key.

    """
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it

    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(stripped.split()), validate=True))
    except (ValueError, binascii.Error, TypeError) as error:
        raise ValueError(f"not a base64 DER public key as SendGrid shows it ({type(error).__name__})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"not an elliptic-curve (ECDSA) key but {type(key).__name__}")  # noqa: TRY004 - a bad setting, reported as one
    return key


def verify_signature(body: bytes, headers: Mapping[str, str], key: str) -> Verdict:
    """
    Check SendGrid's signature of ``body``: ECDSA over the timestamp header and the raw body.

    SendGrid documents no freshness window for the timestamp (and retries failed posts for up to
    24 hours), so none is enforced: a replay of a genuine body adds nothing the idempotent join
    has not already counted (its events carry ``sg_event_id``).
    """
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - cryptography costs ~0.1 s to import; only the webhook receiver needs it

    signature = header(headers, SIGNATURE_HEADER)
    timestamp = header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        return refused(f"no {SIGNATURE_HEADER} / {TIMESTAMP_HEADER} header (is the signed Event Webhook on?)")
    der = b64decode(signature)
    if der is None:
        return refused(f"{SIGNATURE_HEADER} is not base64")
    try:
        public_key(key).verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return refused("SendGrid signature does not match the body and timestamp (STATUSFLOW_SENDGRID_PUBLIC_KEY)")
    return ACCEPTED
