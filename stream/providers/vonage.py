"""
Vonage SMS API delivery receipts -> event envelopes.

A body is one delivery receipt, as Vonage POSTs it in JSON (``{"messageId": …, "status":
"delivered", "err-code": "0", …}``); the same fields form-encoded (Vonage's GET/POST-form
receipts) are read too. The member: a ``member_id`` query parameter of the callback URL, passed on
as a field of that name by whatever posts the body to Kafka (optionally ``campaign_id``,
``message_type``); failing that, the ``client-ref`` we send with each message and Vonage echoes,
spelled as a query string (``member_id=cm-1&campaign_id=c-9``) or a JSON object. The time:
``message-timestamp`` (UTC), else the carrier's ``scts`` (YYMMDDhhmm, UTC).
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from stream.domain.errors import BadEventError
from stream.domain.vocab import BOUNCED, FINAL, PROVIDER_FAILED, TEMPORARY, Vocabulary
from stream.providers.base import (
    Result,
    callback_data,
    envelope,
    load_json,
    message_id_as_sent,
    missing,
    no_member,
    ours,
    text,
)

NAME = "Vonage"
SOURCE = "vonage"
CHANNELS: tuple[str, ...] = ("sms",)

# Statuses and err-codes: https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts
# A failure's err-code decides when this table knows it; else its status does.
VOCABULARY: Vocabulary = {
    "accepted": (2010, TEMPORARY),  # accepted by the carrier; a final receipt should follow
    "buffered": (2010, TEMPORARY),  # waiting at the carrier (the handset is off, for example)
    "delivered": (2020, FINAL),
    "failed": (BOUNCED, FINAL),  # "failed to be delivered" to this number
    "expired": (PROVIDER_FAILED, FINAL),  # no delivery within the validity period
    "rejected": (PROVIDER_FAILED, FINAL),  # refused by Vonage or the carrier: our message or account
    "unknown": (PROVIDER_FAILED, FINAL),  # "an unknown error was received from the carrier"
    1: (PROVIDER_FAILED, FINAL),  # Unknown
    2: (PROVIDER_FAILED, FINAL),  # Absent Subscriber - Temporary: not the number's fault
    3: (BOUNCED, FINAL),  # Absent Subscriber - Permanent: the number is no longer active
    4: (BOUNCED, FINAL),  # Call Barred by User
    5: (PROVIDER_FAILED, FINAL),  # Portability Error
    6: (PROVIDER_FAILED, FINAL),  # Anti-Spam Rejection: our content
    7: (PROVIDER_FAILED, FINAL),  # Handset Busy
    8: (PROVIDER_FAILED, FINAL),  # Network Error
    9: (4006, FINAL),  # Illegal Number: the number sent STOP before and is blocklisted
    10: (PROVIDER_FAILED, FINAL),  # Illegal Message
    11: (PROVIDER_FAILED, FINAL),  # Unroutable
    12: (BOUNCED, FINAL),  # Destination Unreachable
    13: (PROVIDER_FAILED, FINAL),  # Subscriber Age Restriction: our content for this subscriber
    14: (BOUNCED, FINAL),  # Number Blocked by Carrier
    15: (BOUNCED, FINAL),  # Prepaid Insufficient Funds: the recipient's account cannot receive it
    16: (PROVIDER_FAILED, FINAL),  # Gateway Quota Exceeded
    50: (PROVIDER_FAILED, FINAL),  # Entity Filter: our sender registration
    51: (PROVIDER_FAILED, FINAL),  # Header Filter
    52: (PROVIDER_FAILED, FINAL),  # Content Filter
    53: (PROVIDER_FAILED, FINAL),  # Consent Filter: our consent registration (e.g. DLT)
    54: (PROVIDER_FAILED, FINAL),  # Regulation Error
    99: (PROVIDER_FAILED, FINAL),  # General Error
}

_FAILURES = frozenset({"failed", "rejected", "expired", "unknown"})
_VONAGE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


# The send API returns the id the provider's events name.
dispatch_message_id = message_id_as_sent


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one delivery receipt: one event.

    Raises:
        BadEventError: neither a JSON object nor form-encoded fields.

    """
    raw = body.decode(errors="replace") if isinstance(body, bytes) else body
    if raw.lstrip().startswith(("{", "[")):
        fields = load_json(raw, "Vonage body")
        if not isinstance(fields, dict):
            raise BadEventError("not_an_object", "", "a Vonage delivery receipt is one JSON object")
    else:
        try:
            fields = dict(urllib.parse.parse_qsl(raw.strip(), keep_blank_values=True, strict_parsing=True))
        except ValueError as error:
            raise BadEventError(
                "malformed_json", "", f"a Vonage body is JSON or form-encoded fields: {error}"
            ) from None
    return [(fields, _envelope(fields))]


def _envelope(fields: dict[str, Any]) -> dict[str, Any] | BadEventError:
    status = text(fields.get("status"))
    if status is None:
        return missing(NAME, 0, "status", "status")
    member = ours(fields) or callback_data(fields.get("client-ref"))
    code = _error_code(fields.get("err-code"))
    message_id = text(fields.get("messageId"))
    built = envelope(
        source=SOURCE,
        channel="sms",
        status=code if status.lower() in _FAILURES and code in VOCABULARY else status,
        occurred_at=_time(fields),
        member=member,
        event_id=f"{message_id}:{status}:{code}" if message_id else None,
        message_id=message_id,
        detail={"status": status, "err_code": code, "network_code": fields.get("network-code")},
    )
    if "member_id" not in member:
        looked_in = "the member_id query parameter of the callback URL, then client-ref"
        return no_member(NAME, 0, looked_in, "member_id", built)
    return built


def _error_code(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _time(fields: dict[str, Any]) -> object:
    stamp = fields.get("message-timestamp")
    if isinstance(stamp, str) and _VONAGE_TIME.fullmatch(stamp.strip()):
        # "2020-01-01 12:00:00", UTC without an offset: RFC 3339 needs one.
        return stamp.strip().replace(" ", "T") + "Z"
    if stamp:
        return stamp
    scts = fields.get("scts")
    if isinstance(scts, str) and len(scts) == 10 and scts.isdigit():
        try:
            return datetime.strptime(scts, "%y%m%d%H%M").replace(tzinfo=UTC).isoformat()
        except ValueError:
            return scts
    return None
