"""
SendGrid Event Webhook bodies -> event envelopes.

A body is a JSON array of events. Each event must carry the custom argument ``member_id`` (and
may carry ``campaign_id`` and ``message_type``); SendGrid puts custom arguments at the top level
of each event. The recipient's address is deliberately not copied: the resolved state never
holds personal data.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.codec import json_error
from stream.domain.errors import BadEventError

# Event fields worth keeping as the envelope's detail (reasons, bounce type, SMTP response).
_DETAIL_FIELDS = ("reason", "type", "status", "response", "attempt", "bounce_classification", "url", "asm_group_id")


def envelopes_from_body(body: bytes | str) -> list[tuple[object, dict[str, Any] | BadEventError]]:
    """
    Split one webhook body into envelopes, one per event, in order.

    Returns:
        For each event, the event as sent and either its envelope or the error that makes it
        unusable, so one bad event does not take its neighbours down with it (and its dead letter
        can carry that event alone, not the whole body).

    Raises:
        BadEventError: the body as a whole is not a JSON array (or a single event object).

    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise json_error(body, error, "SendGrid body is not valid JSON") from None
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        raise BadEventError(
            "not_an_object", "", f"a SendGrid body is a JSON array of events, got {type(parsed).__name__}"
        )
    return [(event, _envelope(index, event)) for index, event in enumerate(parsed)]


def _envelope(index: int, event: object) -> dict[str, Any] | BadEventError:
    if not isinstance(event, dict):
        return BadEventError("not_an_object", f"[{index}]", f"SendGrid event {index} is not an object")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        return BadEventError("missing_field", f"[{index}].event", f"SendGrid event {index} has no event name")
    if event.get("member_id") in (None, ""):
        return BadEventError(
            "missing_field", f"[{index}].member_id", f"SendGrid event {index} ({name}) lacks the custom arg member_id"
        )
    # A "bounce" event is either a bounce or a block: SendGrid says which in "type".
    status = "blocked" if name == "bounce" and event.get("type") == "blocked" else name
    envelope: dict[str, Any] = {
        "member_id": event["member_id"],
        "source": "sendgrid",
        "channel": "email",
        "status": status,
        "occurred_at": event.get("timestamp"),
        "detail": {field: event[field] for field in _DETAIL_FIELDS if field in event},
    }
    for field, key in (("event_id", "sg_event_id"), ("message_id", "sg_message_id")):
        if event.get(key) is not None:
            envelope[field] = event[key]
    for field in ("campaign_id", "message_type"):
        if event.get(field) is not None:
            envelope[field] = event[field]
    return envelope
