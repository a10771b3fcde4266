"""
Meta WhatsApp Cloud API webhooks -> event envelopes.

A body is ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses":
[...]}}]}]}``: every status of every change is one event. Changes without statuses (inbound
messages, template or account updates) hold no delivery status and make no event. The member:
``biz_opaque_callback_data``, the string we send with each message and Meta hands back on its
statuses, spelled as a JSON object (``{"member_id": "cm-1"}``) or a query string
(``member_id=cm-1&campaign_id=c-9``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import (
    Result,
    as_dict,
    callback_data,
    envelope,
    load_json,
    message_id_as_sent,
    missing,
    no_member,
    text,
)
from stream.providers.signing import ACCEPTED, Verdict, header, refused, same

NAME = "WhatsApp"
SOURCE = "whatsapp"
CHANNELS: tuple[str, ...] = ("whatsapp",)

# Statuses: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#statuses-object
# Error codes: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
# A failed status is read as its errors[0].code when this table knows it, else as "failed".
VOCABULARY: Vocabulary = {
    "sent": (2010, TEMPORARY),  # on WhatsApp's servers; delivered/read may follow
    "delivered": (2020, FINAL),
    "read": (2030, FINAL),
    "played": (2030, FINAL),  # a voice message played: read, for audio
    "failed": (PROVIDER_FAILED, FINAL),  # no error code we know: an unknown failure at the provider
    131026: (BOUNCED, FINAL),  # Message undeliverable: not a WhatsApp user, old app, terms not accepted
    131050: (4006, FINAL),  # The user has stopped marketing messages from us
    131047: (PROVIDER_FAILED, FINAL),  # Re-engagement: outside the 24 h window, a template is needed
    131049: (PROVIDER_FAILED, FINAL),  # Meta chose not to deliver (per-user marketing limits)
    131048: (PROVIDER_FAILED, FINAL),  # Spam rate limit hit
    131056: (PROVIDER_FAILED, FINAL),  # Pair rate limit hit
    130429: (PROVIDER_FAILED, FINAL),  # Rate limit hit
    131000: (PROVIDER_FAILED, FINAL),  # Something went wrong
    131016: (PROVIDER_FAILED, FINAL),  # Service unavailable
    131031: (PROVIDER_FAILED, FINAL),  # Business account locked
    131042: (PROVIDER_FAILED, FINAL),  # Business eligibility: payment issue
    131051: (PROVIDER_FAILED, FINAL),  # Unsupported message type
    131053: (PROVIDER_FAILED, FINAL),  # Media upload error
    132000: (PROVIDER_FAILED, FINAL),  # Template parameter count mismatch
    132001: (PROVIDER_FAILED, FINAL),  # Template does not exist
    132015: (PROVIDER_FAILED, FINAL),  # Template paused for low quality
    132016: (PROVIDER_FAILED, FINAL),  # Template disabled
    190: (PROVIDER_FAILED, FINAL),  # Access token expired
}


# The send API returns the id the provider's events name.
dispatch_message_id = message_id_as_sent


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one webhook body: one event per status.

    Raises:
        BadEventError: not JSON, not an object, or without an entry list.

    """
    parsed = load_json(body, "WhatsApp body")
    if not isinstance(parsed, dict):
        raise BadEventError("not_an_object", "", f"a WhatsApp body is a JSON object, got {type(parsed).__name__}")
    entries = parsed.get("entry")
    if not isinstance(entries, list):
        raise BadEventError("missing_field", "entry", "a WhatsApp body holds its changes in entry[].changes[]")
    statuses = [
        status
        for entry in entries
        for change in as_dict(entry).get("changes") or []
        for status in as_dict(as_dict(change).get("value")).get("statuses") or []
    ]
    return [(status, _envelope(index, status)) for index, status in enumerate(statuses)]


def _envelope(index: int, status: object) -> dict[str, Any] | BadEventError:
    if not isinstance(status, dict):
        return BadEventError("not_an_object", f"[{index}]", f"WhatsApp status {index} is not an object")
    name = text(status.get("status"))
    if name is None:
        return missing(NAME, index, "status", "status")
    member = callback_data(status.get("biz_opaque_callback_data"))
    errors = status.get("errors")
    error = as_dict(errors[0]) if isinstance(errors, list) and errors else {}
    code = error.get("code")
    message_id = text(status.get("id"))
    built = envelope(
        source=SOURCE,
        channel="whatsapp",
        status=code if name == "failed" and isinstance(code, int) and code in VOCABULARY else name,
        occurred_at=_epoch(status.get("timestamp")),
        member=member,
        event_id=f"{message_id}:{name}" if message_id else None,
        message_id=message_id,
        detail={"status": name, "error_code": code, "error_title": error.get("title")},
    )
    if "member_id" not in member:
        return no_member(NAME, index, "biz_opaque_callback_data", "biz_opaque_callback_data", built)
    return built


def _epoch(value: object) -> object:
    # Meta sends epoch seconds as a digit string; an integer says the same without ambiguity.
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 19 else value


# --- X-Hub-Signature-256 ---------------------------------------------------------------------------
# https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads: Meta
# signs every POST with "sha256=" and the hex HMAC-SHA256 of the raw body, keyed with the app secret.
SIGNATURE_HEADER = "X-Hub-Signature-256"


def verify_signature(body: bytes, headers: Mapping[str, str], app_secret: str) -> Verdict:
    """Check Meta's ``X-Hub-Signature-256`` of the raw ``body``."""
    given = header(headers, SIGNATURE_HEADER)
    if not given:
        return refused(f"no {SIGNATURE_HEADER} header")
    scheme, _, digest = given.partition("=")
    if scheme.lower() != "sha256" or not digest:
        return refused(f"{SIGNATURE_HEADER} is not sha256=<hex>")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not same(expected, digest.lower()):
        return refused(f"{SIGNATURE_HEADER} does not match the body (check STATUSFLOW_WHATSAPP_APP_SECRET)")
    return ACCEPTED


# Meta checks a callback URL once, when it is configured: GET with hub.mode=subscribe,
# hub.verify_token (the token typed into the dashboard) and hub.challenge, which must come back.
# https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
def subscription_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """Return the challenge to answer Meta's verification request with, or None if it is not ours."""
    if query.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not same(verify_token, query.get("hub.verify_token", "")):
        return None
    return query.get("hub.challenge")
