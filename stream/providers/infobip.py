"""
Infobip SMS delivery reports -> event envelopes.

A body is ``{"results": [...]}``, one report per message; the older v2 reports (``smsCount``,
``sentAt``/``doneAt``) and the current ones (``messageCount``) share the fields read here:
``messageId``, ``status``, ``error``, ``doneAt``/``sentAt`` and ``callbackData``. The member:
``callbackData``, the text we send with each message and Infobip hands back in its reports,
spelled as a JSON object (``{"member_id": "cm-1"}``) or a query string
(``member_id=cm-1&campaign_id=c-9``).
"""

from __future__ import annotations

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

NAME = "Infobip"
SOURCE = "infobip"
CHANNELS: tuple[str, ...] = ("sms",)

# https://www.infobip.com/docs/essentials/api-essentials/response-status-and-error-codes
# A report is read by its error's name when this table knows it ("error/<name>"), else by its
# status name, else by its status group. In the UNDELIVERABLE group Infobip's error.permanent
# decides: a permanent error is the recipient's (a bounce), another one the provider's.
VOCABULARY: Vocabulary = {
    # Status groups, for a status name this table does not know.
    "PENDING": (2010, TEMPORARY),
    "DELIVERED": (2020, FINAL),
    "UNDELIVERABLE": (BOUNCED, FINAL),
    "EXPIRED": (PROVIDER_FAILED, FINAL),  # no delivery report within the validity period
    "REJECTED": (PROVIDER_FAILED, FINAL),
    "UNDELIVERABLE/temporary error": (PROVIDER_FAILED, FINAL),  # error.permanent false: not the address
    # Status names.
    "PENDING_ACCEPTED": (2010, TEMPORARY),
    "PENDING_ENROUTE": (2010, TEMPORARY),
    "PENDING_WAITING_DELIVERY": (2010, TEMPORARY),
    "DELIVERED_TO_OPERATOR": (2010, TEMPORARY),  # "intermediate": the handset's report may follow
    "DELIVERED_TO_HANDSET": (2020, FINAL),
    "UNDELIVERABLE_REJECTED_OPERATOR": (BOUNCED, FINAL),
    "UNDELIVERABLE_NOT_DELIVERED": (BOUNCED, FINAL),
    "EXPIRED_EXPIRED": (PROVIDER_FAILED, FINAL),
    "EXPIRED_DLR_UNKNOWN": (PROVIDER_FAILED, FINAL),
    "REJECTED_DND": (4006, FINAL),  # the number is on a Do-Not-Disturb registry: opted out before
    "REJECTED_DESTINATION": (BOUNCED, FINAL),  # the destination is blocked
    "REJECTED_INVALID_DESTINATION": (4004, FINAL),
    "REJECTED_PREFIX_MISSING": (4004, FINAL),  # no valid country prefix: not E.164
    "MISSING_TO": (4004, FINAL),
    "REJECTED_DESTINATION_NOT_REGISTERED": (PROVIDER_FAILED, FINAL),  # a trial account's number list
    "REJECTED_NETWORK": (PROVIDER_FAILED, FINAL),
    "REJECTED_SOURCE": (PROVIDER_FAILED, FINAL),
    "REJECTED_SENDER": (PROVIDER_FAILED, FINAL),
    "REJECTED_NOT_ENOUGH_CREDITS": (PROVIDER_FAILED, FINAL),
    "REJECTED_PREPAID_PACKAGE_EXPIRED": (PROVIDER_FAILED, FINAL),
    "REJECTED_ROUTE_NOT_AVAILABLE": (PROVIDER_FAILED, FINAL),
    "REJECTED_FLOODING_FILTER": (PROVIDER_FAILED, FINAL),
    "REJECTED_SYSTEM_ERROR": (PROVIDER_FAILED, FINAL),
    "REJECTED_DUPLICATE_MESSAGE_ID": (PROVIDER_FAILED, FINAL),
    "REJECTED_INVALID_UDH": (PROVIDER_FAILED, FINAL),
    "REJECTED_MESSAGE_TOO_LONG": (PROVIDER_FAILED, FINAL),
    # Error names that say more than the status.
    "error/EC_UNKNOWN_SUBSCRIBER": (BOUNCED, FINAL),  # the number does not exist on the network
    "error/EC_ILLEGAL_SUBSCRIBER": (BOUNCED, FINAL),
    "error/EC_CALL_BARRED": (BOUNCED, FINAL),  # barred from receiving messages
    "error/EC_TELESERVICE_NOT_PROVISIONED": (5202, FINAL),  # the subscription cannot receive SMS
    "error/EC_ILLEGAL_EQUIPMENT": (5202, FINAL),  # the handset cannot take SMS
}

_GROUPS = frozenset({"PENDING", "DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"})


# The send API returns the id the provider's events name.
dispatch_message_id = message_id_as_sent


def envelopes_from_body(body: bytes | str) -> list[Result]:
    """
    Read one delivery report body: one event per result.

    Raises:
        BadEventError: not JSON, not an object, or without a results list.

    """
    parsed = load_json(body, "Infobip body")
    if not isinstance(parsed, dict):
        raise BadEventError("not_an_object", "", f"an Infobip body is a JSON object, got {type(parsed).__name__}")
    results = parsed.get("results")
    if not isinstance(results, list):
        raise BadEventError(
            "missing_field", "results", "an Infobip delivery report body holds its reports in results[]"
        )
    return [(result, _envelope(index, result)) for index, result in enumerate(results)]


def _envelope(index: int, result: object) -> dict[str, Any] | BadEventError:
    if not isinstance(result, dict):
        return BadEventError("not_an_object", f"[{index}]", f"Infobip report {index} is not an object")
    status = as_dict(result.get("status"))
    if text(status.get("name")) is None and text(status.get("groupName")) is None:
        return missing(NAME, index, "status.name", "status")
    member = callback_data(result.get("callbackData"))
    error = as_dict(result.get("error"))
    message_id = text(result.get("messageId"))
    key = _status(status, error)
    built = envelope(
        source=SOURCE,
        channel="sms",
        status=key,
        occurred_at=result.get("doneAt") or result.get("sentAt"),
        member=member,
        event_id=f"{message_id}:{status.get('name') or status.get('groupName')}" if message_id else None,
        message_id=message_id,
        detail={
            "status": status.get("name"),
            "group": status.get("groupName"),
            "error": error.get("name"),
            "permanent": error.get("permanent"),
        },
    )
    if "member_id" not in member:
        return no_member(NAME, index, "callbackData", "callbackData", built)
    return built


def _status(status: dict[str, Any], error: dict[str, Any]) -> str:
    name, group = text(status.get("name")), text(status.get("groupName"))
    error_key = f"error/{error.get('name')}"
    if group in {"UNDELIVERABLE", "REJECTED"} and error_key in VOCABULARY:
        return error_key
    if group == "UNDELIVERABLE" and error.get("permanent") is False:
        return "UNDELIVERABLE/temporary error"
    if name is not None and (name in VOCABULARY or group not in _GROUPS):
        return name
    return group or ""
