"""
Twilio Programmable Messaging status callbacks (SMS and WhatsApp) -> event envelopes.

Twilio POSTs one status change per request, form-encoded (``MessageSid=SM…&MessageStatus=delivered``);
a JSON object with the same fields is read too. The member: Twilio echoes none of our data, so
the status callback URL we send with each message carries ``?member_id=…`` (and optionally
``campaign_id``, ``message_type``); whatever posts the body to Kafka passes those query parameters
on as form fields of the same names. The time: a status callback carries none but the carrier's
``RawDlrDoneDate`` (YYMMDDhhmm, UTC) on delivery reports, so the poster adds ``received_at`` (when
it received the callback: RFC 3339 or epoch); an event with neither is dead-lettered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import Result, envelope, load_json, message_id_as_sent, missing, no_member, ours, text
from stream.providers.signing import ACCEPTED, Verdict, header, refused, same

NAME = "Twilio"
SOURCE = "twilio"
CHANNELS: tuple[str, ...] = ("sms", "whatsapp")

# Statuses: https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
# Error codes (each at https://www.twilio.com/docs/api/errors/<code>) decide a failed/undelivered
# message: the envelope's status is the code when this table knows it, else the status name.
VOCABULARY: Vocabulary = {
    "accepted": (2010, TEMPORARY),  # a Messaging Service took the request
    "scheduled": (10, TEMPORARY),
    "queued": (2010, TEMPORARY),
    "sending": (2010, TEMPORARY),
    "sent": (2010, TEMPORARY),  # handed to the carrier; a delivery report may follow
    "delivered": (2020, FINAL),
    "partially_delivered": (2020, FINAL),  # some segments/recipients confirmed
    "read": (2030, FINAL),  # WhatsApp read receipt
    "undelivered": (BOUNCED, FINAL),  # "the carrier could not deliver": the recipient's side
    "failed": (PROVIDER_FAILED, FINAL),  # "could not be sent": queue overflow, account, media
    "canceled": (4000, FINAL),  # a scheduled message we cancelled ourselves
    30001: (PROVIDER_FAILED, FINAL),  # Queue overflow
    30002: (PROVIDER_FAILED, FINAL),  # Account suspended
    30003: (BOUNCED, FINAL),  # Unreachable destination handset
    30004: (BOUNCED, FINAL),  # Message blocked: the recipient blocked us or the number is blacklisted
    30005: (BOUNCED, FINAL),  # Unknown destination handset: the number does not exist (anymore)
    30006: (5202, FINAL),  # Landline or unreachable carrier: cannot take SMS
    30007: (PROVIDER_FAILED, FINAL),  # Message filtered (carrier violation): our content/sender
    30008: (PROVIDER_FAILED, FINAL),  # Unknown error
    30009: (PROVIDER_FAILED, FINAL),  # Missing inbound segment
    30010: (PROVIDER_FAILED, FINAL),  # Message price exceeds max price
    30022: (PROVIDER_FAILED, FINAL),  # US A2P 10DLC: rate limits exceeded
    30032: (PROVIDER_FAILED, FINAL),  # Toll-free number not verified
    30034: (PROVIDER_FAILED, FINAL),  # US A2P 10DLC: message from an unregistered number
    21211: (4004, FINAL),  # Invalid 'To' phone number
    21408: (PROVIDER_FAILED, FINAL),  # Permission to send to this region not enabled
    21610: (4006, FINAL),  # Attempt to send to an unsubscribed recipient (replied STOP before)
    21612: (5202, FINAL),  # The 'To' number is not currently reachable via SMS
    21614: (5202, FINAL),  # 'To' number is not a valid mobile number: a landline
    63003: (BOUNCED, FINAL),  # WhatsApp: channel could not find the To address (not a WhatsApp user)
    63016: (PROVIDER_FAILED, FINAL),  # WhatsApp: free-form message outside the 24 h window: use a template
    63024: (BOUNCED, FINAL),  # WhatsApp: invalid message recipient
}

_FAILURES = frozenset({"failed", "undelivered"})

# The send API's "sid" (SM…, MM…) is the callbacks' MessageSid.
dispatch_message_id = message_id_as_sent


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one status callback: one event.

    Raises:
        BadEventError: neither form-encoded nor a JSON object.

    """
    return envelopes_with_context(body, {})


def envelopes_with_context(body: bytes | str, context: Mapping[str, str]) -> list[Result]:
    """
    Read one status callback, with what the webhook receiver knew beside the body.

    ``statusflow webhooks`` writes the body unchanged and puts the callback URL's query parameters
    (``member_id``…) and the time it received the callback (``received_at``) in record headers;
    each fills the field of that name when the body has none.

    Raises:
        BadEventError: neither form-encoded nor a JSON object.

    """
    raw = body.decode(errors="replace") if isinstance(body, bytes) else body
    if raw.lstrip().startswith(("{", "[")):
        fields = load_json(raw, "Twilio body")
        if not isinstance(fields, dict):
            raise BadEventError("not_an_object", "", "a Twilio JSON body is one object")
    else:
        try:
            fields = dict(urllib.parse.parse_qsl(raw.strip(), keep_blank_values=True, strict_parsing=True))
        except ValueError as error:
            raise BadEventError("malformed_json", "", f"a Twilio body is form-encoded fields: {error}") from None
    for name, value in context.items():
        fields.setdefault(name, value)
    return [(fields, _envelope(fields))]


def _envelope(fields: dict[str, Any]) -> dict[str, Any] | BadEventError:
    status = text(fields.get("MessageStatus")) or text(fields.get("SmsStatus"))
    if status is None:
        return missing(NAME, 0, "MessageStatus", "status")
    member = ours(fields)
    occurred_at = _done_date(fields.get("RawDlrDoneDate")) or fields.get("received_at")
    if occurred_at in (None, ""):
        return missing(NAME, 0, "received_at", "time: a status callback has none, the poster adds received_at")
    code = _error_code(fields.get("ErrorCode"))
    message_id = text(fields.get("MessageSid")) or text(fields.get("SmsSid"))
    built = envelope(
        source=SOURCE,
        channel=_channel(fields),
        status=code if code is not None and status.lower() in _FAILURES and code in VOCABULARY else status,
        occurred_at=occurred_at,
        member=member,
        event_id=f"{message_id}:{status}" if message_id else None,
        message_id=message_id,
        detail={"status": status, "error_code": code, "error_message": fields.get("ErrorMessage")},
    )
    if "member_id" not in member:
        return no_member(NAME, 0, "the member_id query parameter of the status callback URL", "member_id", built)
    return built


def _channel(fields: dict[str, Any]) -> str:
    prefix = f"{fields.get('ChannelPrefix', '')}:{fields.get('To', '')}:{fields.get('From', '')}".lower()
    return "whatsapp" if "whatsapp" in prefix else "sms"


def _error_code(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _done_date(value: object) -> str | None:
    # The carrier's done date, YYMMDDhhmm; Twilio passes it on as the carrier sent it (UTC).
    if not isinstance(value, str) or len(value) != 10 or not value.isdigit():
        return None
    try:
        moment = datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.isoformat()


# --- X-Twilio-Signature ----------------------------------------------------------------------------
# https://www.twilio.com/docs/usage/webhooks/webhooks-security: HMAC-SHA1 with the Auth Token over
# the full URL Twilio called (scheme, host, path, query), followed by each POST parameter, sorted by
# name, as name and value with nothing between; base64. A JSON body is signed through the URL
# instead: its bodySHA256 query parameter is the hex SHA-256 of the body, and no parameters follow.
SIGNATURE_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def verify_signature(url: str, body: bytes, headers: Mapping[str, str], auth_token: str) -> Verdict:
    """
    Check Twilio's signature of a request to ``url`` (as Twilio called it: the public URL and query).

    The URL is tried as given and with the scheme's default port added or removed, as Twilio's own
    validators do: what a proxy shows and what Twilio signed may differ only there.
    """
    given = header(headers, SIGNATURE_HEADER)
    if not given:
        return refused(f"no {SIGNATURE_HEADER} header")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if "bodySHA256" in query:
        if not same(hashlib.sha256(body).hexdigest(), query["bodySHA256"][0].lower()):
            return refused("the body does not match the bodySHA256 query parameter")
        suffix = ""
    else:
        try:
            fields = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return refused("the form body is not UTF-8")
        suffix = "".join(name + value for name, value in sorted(fields))
    for candidate in _url_variants(url):
        digest = hmac.new(auth_token.encode(), (candidate + suffix).encode(), hashlib.sha1).digest()
        if same(base64.b64encode(digest), given):
            return ACCEPTED
    return refused(
        f"{SIGNATURE_HEADER} does not match (check STATUSFLOW_TWILIO_AUTH_TOKEN and STATUSFLOW_WEBHOOKS_PUBLIC_URL)"
    )


def _url_variants(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or parts.port not in (None, default):
        return [url]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0] if parts.port else hostport
    other = f"{userinfo}{at}{host}" if parts.port else f"{userinfo}{at}{host}:{default}"
    return [url, urllib.parse.urlunsplit(parts._replace(netloc=other))]
