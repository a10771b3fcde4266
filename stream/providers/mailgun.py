"""
Mailgun webhooks -> event envelopes.

A body is ``{"signature": {...}, "event-data": {...}}``: one event per request (a JSON array of
such bodies is read too). The member: the custom variables we send with each message
(``v:member_id``, optionally ``v:campaign_id``, ``v:message_type``), which Mailgun hands back in
``event-data.user-variables``. The signature is the webhook receiver's business, not read here.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, COMPLAINT, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import Result, as_dict, envelope, json_items, missing, no_member, not_an_object, ours, text
from stream.providers.signing import Verdict, refused, same

NAME = "Mailgun"
SOURCE = "mailgun"
CHANNELS: tuple[str, ...] = ("email",)

# Events: https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types
# Webhook payloads: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhooks
# A failure is read as "failed/<severity>/<reason>", else "failed/<severity>".
VOCABULARY: Vocabulary = {
    "accepted": (2010, TEMPORARY),  # queued at Mailgun
    "delivered": (2020, FINAL),
    "opened": (2030, FINAL),
    "clicked": (2040, FINAL),
    "unsubscribed": (3010, FINAL),
    "complained": COMPLAINT,  # marked as spam
    "rejected": (PROVIDER_FAILED, FINAL),  # Mailgun refused our request to send
    # severity=temporary: "temporarily rejected by an ESP"; Mailgun retries, so still in transit.
    "failed/temporary": (2010, TEMPORARY),
    "failed/permanent": (BOUNCED, FINAL),  # a permanent failure of a reason this table does not name
    "failed/permanent/bounce": (BOUNCED, FINAL),  # a hard bounce
    # Mailgun did not attempt delivery: the address is on its suppression lists already.
    "failed/permanent/suppress-bounce": (4006, FINAL),
    "failed/permanent/suppress-unsubscribe": (4006, FINAL),
    "failed/permanent/suppress-complaint": (4006, FINAL),
    "failed/permanent/espblock": (PROVIDER_FAILED, FINAL),  # the receiving ESP blocked our sending
    "failed/permanent/old": (PROVIDER_FAILED, FINAL),  # retry limit reached after temporary failures
    "failed/permanent/generic": (PROVIDER_FAILED, FINAL),  # unclassified: Mailgun's "generic"
}

_DETAIL_FIELDS = ("severity", "reason", "log-level")


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one webhook body (or a JSON array of them): one event each.

    Raises:
        BadEventError: not JSON, or neither an object nor an array.

    """
    return [(item, _envelope(index, item)) for index, item in enumerate(json_items(body, "Mailgun body"))]


def _envelope(index: int, item: object) -> dict[str, Any] | BadEventError:
    if not isinstance(item, dict):
        return not_an_object(NAME, index)
    data = item.get("event-data")
    if not isinstance(data, dict):
        return missing(NAME, index, "event-data", "event-data object")
    name = text(data.get("event"))
    if name is None:
        return missing(NAME, index, "event-data.event", "event name")
    member = ours(data.get("user-variables"))
    delivery = as_dict(data.get("delivery-status"))
    built = envelope(
        source=SOURCE,
        channel="email",
        status=_status(name, data),
        occurred_at=data.get("timestamp"),
        member=member,
        event_id=data.get("id"),
        message_id=as_dict(as_dict(data.get("message")).get("headers")).get("message-id"),
        detail={
            **{field: data[field] for field in _DETAIL_FIELDS if field in data},
            "code": delivery.get("code"),
            "description": delivery.get("description") or delivery.get("message"),
        },
    )
    if "member_id" not in member:
        return no_member(
            NAME,
            index,
            "the custom variables (event-data.user-variables.member_id)",
            "event-data.user-variables.member_id",
            built,
        )
    return built


def dispatch_message_id(message_id: str) -> str:
    """
    Return a Mailgun message id without angle brackets.

    The send API answers ``{"id": "<20240101.1@mg.example.com>"}``; events carry
    ``event-data.message.headers.message-id`` without the brackets.
    """
    return message_id.strip().removeprefix("<").removesuffix(">")


def _status(name: str, data: dict[str, Any]) -> str:
    if name != "failed":
        return name
    kind = f"failed/{data.get('severity')}"
    specific = f"{kind}/{data.get('reason')}"
    return specific if specific in VOCABULARY else kind


# --- The webhook signature -------------------------------------------------------------------------
# https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks: the body's
# "signature" object holds timestamp, token (50 random characters) and signature, the hex
# HMAC-SHA256 of timestamp and token concatenated, keyed with the Webhook Signing Key. Mailgun's
# page advises refusing stale timestamps and tokens seen before: a captured request replays as it is.
MAX_AGE = 300.0  # seconds a signature stays acceptable, either side of our clock


def verify_signature(body: bytes, signing_key: str, now: float, max_age: float = MAX_AGE) -> Verdict:  # noqa: PLR0911 - one return per reason
    """
    Check Mailgun's signature in ``body`` and its freshness at ``now`` (epoch seconds).

    Returns:
        The verdict; when accepted, its ``nonce`` is the token, which the caller must refuse
        to see twice within ``max_age`` (this function remembers nothing).

    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return refused("the body is not JSON, so it holds no Mailgun signature")
    signature = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(signature, dict):
        return refused("no signature object in the body (one webhook per request is signed)")
    timestamp, token, given = (signature.get(name) for name in ("timestamp", "token", "signature"))
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    if not (isinstance(timestamp, str) and isinstance(token, str) and isinstance(given, str) and token):
        return refused("the signature object needs timestamp, token and signature strings")
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not same(expected, given.lower()):
        return refused("Mailgun signature does not match (check STATUSFLOW_MAILGUN_SIGNING_KEY)")
    try:
        age = now - float(timestamp)
    except ValueError:
        return refused(f"signature timestamp {timestamp[:30]!r} is not epoch seconds")
    if abs(age) > max_age:
        return refused(
            f"signature timestamp is {age:.0f} s from now, outside the {max_age:.0f} s window (stale or replayed)"
        )
    return Verdict(ok=True, nonce=token)
