"""Infobip SMS delivery reports: every status, group and error, callbackData, v2 and current shapes."""

from __future__ import annotations

from typing import Any

import pytest

from stream.domain.model import Event
from stream.providers import infobip
from tests.providers_support import decoded, letter, outcome

_GROUP_ID = {"PENDING": 1, "UNDELIVERABLE": 2, "DELIVERED": 3, "EXPIRED": 4, "REJECTED": 5}
_NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": False}

# (group, status name, error, AdditionStatus, final) per vocabulary entry, as Infobip's status and
# error code reference documents them
# (https://www.infobip.com/docs/essentials/api-essentials/response-status-and-error-codes).
CASES: dict[str | int, tuple[str, str, dict[str, Any], int, bool]] = {
    "PENDING": ("PENDING", "PENDING_SOMETHING_NEW", _NO_ERROR, 2010, False),
    "DELIVERED": ("DELIVERED", "DELIVERED_SOMEWHERE_NEW", _NO_ERROR, 2020, True),
    "UNDELIVERABLE": ("UNDELIVERABLE", "UNDELIVERABLE_NEW", {"name": "EC_X", "permanent": True}, 5201, True),
    "EXPIRED": ("EXPIRED", "EXPIRED_NEW", _NO_ERROR, 5200, True),
    "REJECTED": ("REJECTED", "REJECTED_NEW", _NO_ERROR, 5200, True),
    "UNDELIVERABLE/temporary error": (
        "UNDELIVERABLE",
        "UNDELIVERABLE_NOT_DELIVERED",
        {"groupName": "HANDSET_ERRORS", "name": "EC_ABSENT_SUBSCRIBER", "permanent": False},
        5200,
        True,
    ),
    "PENDING_ACCEPTED": ("PENDING", "PENDING_ACCEPTED", _NO_ERROR, 2010, False),
    "PENDING_ENROUTE": ("PENDING", "PENDING_ENROUTE", _NO_ERROR, 2010, False),
    "PENDING_WAITING_DELIVERY": ("PENDING", "PENDING_WAITING_DELIVERY", _NO_ERROR, 2010, False),
    "DELIVERED_TO_OPERATOR": ("DELIVERED", "DELIVERED_TO_OPERATOR", _NO_ERROR, 2010, False),
    "DELIVERED_TO_HANDSET": ("DELIVERED", "DELIVERED_TO_HANDSET", _NO_ERROR, 2020, True),
    "UNDELIVERABLE_REJECTED_OPERATOR": (
        "UNDELIVERABLE",
        "UNDELIVERABLE_REJECTED_OPERATOR",
        {"name": "EC_SM_DF_MEMORYCAPACITYEXCEEDED", "permanent": True},
        5201,
        True,
    ),
    "UNDELIVERABLE_NOT_DELIVERED": (
        "UNDELIVERABLE",
        "UNDELIVERABLE_NOT_DELIVERED",
        {"name": "EC_ABSENT_SUBSCRIBER_SM", "permanent": True},
        5201,
        True,
    ),
    **{
        name: (name.split("_", 1)[0], name, _NO_ERROR, expected, True)
        for name, expected in {
            "EXPIRED_EXPIRED": 5200,
            "EXPIRED_DLR_UNKNOWN": 5200,
            "REJECTED_DND": 4006,
            "REJECTED_DESTINATION": 5201,
            "REJECTED_INVALID_DESTINATION": 4004,
            "REJECTED_PREFIX_MISSING": 4004,
            "REJECTED_DESTINATION_NOT_REGISTERED": 5200,
            "REJECTED_NETWORK": 5200,
            "REJECTED_SOURCE": 5200,
            "REJECTED_SENDER": 5200,
            "REJECTED_NOT_ENOUGH_CREDITS": 5200,
            "REJECTED_PREPAID_PACKAGE_EXPIRED": 5200,
            "REJECTED_ROUTE_NOT_AVAILABLE": 5200,
            "REJECTED_FLOODING_FILTER": 5200,
            "REJECTED_SYSTEM_ERROR": 5200,
            "REJECTED_DUPLICATE_MESSAGE_ID": 5200,
            "REJECTED_INVALID_UDH": 5200,
            "REJECTED_MESSAGE_TOO_LONG": 5200,
        }.items()
    },
    "MISSING_TO": ("REJECTED", "MISSING_TO", _NO_ERROR, 4004, True),
    **{
        f"error/{name}": (
            "UNDELIVERABLE",
            "UNDELIVERABLE_NOT_DELIVERED",
            {"groupName": "HANDSET_ERRORS", "name": name, "permanent": permanent},
            expected,
            True,
        )
        for name, permanent, expected in (
            ("EC_UNKNOWN_SUBSCRIBER", True, 5201),
            ("EC_ILLEGAL_SUBSCRIBER", True, 5201),
            ("EC_CALL_BARRED", False, 5201),
            ("EC_TELESERVICE_NOT_PROVISIONED", True, 5202),
            ("EC_ILLEGAL_EQUIPMENT", True, 5202),
        )
    },
}


def report(group: str, name: str, error: dict[str, Any], *, v2: bool = False, **extra: Any) -> dict[str, Any]:
    """Return one results[] item, in the current shape or the older v2 one (smsCount)."""
    item: dict[str, Any] = {
        "bulkId": "BULK-ID-123-xyz",
        "messageId": "MESSAGE-ID-123-xyz",
        "to": "4512345678",
        "sentAt": "2025-01-01T12:00:00.000+0000",
        "doneAt": "2025-01-01T12:00:05.000+0000",
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {"groupId": _GROUP_ID[group], "groupName": group, "id": 5, "name": name, "description": "…"},
        "error": error,
        "callbackData": "member_id=cm-1&campaign_id=c-9",
        ("smsCount" if v2 else "messageCount"): 1,
        **extra,
    }
    return item


def test_the_table_covers_every_infobip_status_group_and_error() -> None:
    """Each vocabulary entry has a documented report below."""
    assert set(infobip.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "group", "name", "error", "code", "final"), [(k, *v) for k, v in CASES.items()])
@pytest.mark.parametrize("v2", [False, True], ids=["current", "v2"])
def test_an_infobip_report_resolves_as_documented(
    key: str, group: str, name: str, error: dict[str, Any], code: int, final: bool, v2: bool
) -> None:
    """A known error, then the status name, then its group decide; error.permanent splits UNDELIVERABLE."""
    assert (code, final) == outcome("infobip", {"results": [report(group, name, error, v2=v2)]})


def test_one_body_holds_many_reports_and_keeps_their_ids() -> None:
    """Each result is one event; messageId is the message id; callbackData as JSON works too."""
    body = {
        "results": [
            report("DELIVERED", "DELIVERED_TO_HANDSET", _NO_ERROR),
            report("PENDING", "PENDING_ENROUTE", _NO_ERROR, callbackData='{"member_id": "cm-2"}', messageId="M2"),
        ]
    }
    first, second = decoded("infobip", body)

    assert isinstance(first, Event)
    assert isinstance(second, Event)
    assert [("cm-1", "c-9", 2020), ("cm-2", None, 2010)] == [
        (e.member_id, e.campaign_id, e.decision.outcome.code) for e in (first, second)
    ]
    assert "infobip:M2:PENDING_ENROUTE" == second.event_id


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (
            {"results": [report("DELIVERED", "DELIVERED_TO_HANDSET", _NO_ERROR, callbackData=None)]},
            "missing_field",
            "[0].callbackData",
        ),
        (
            {"results": [report("DELIVERED", "DELIVERED_TO_HANDSET", _NO_ERROR, status={})]},
            "missing_field",
            "[0].status.name",
        ),
        ({"results": ["x"]}, "not_an_object", "[0]"),
        ({"reports": []}, "missing_field", "results"),
        (b"[]", "not_an_object", ""),
        (b"{", "malformed_json", ""),
    ],
)
def test_a_bad_infobip_body_is_dead_lettered_with_where(body: Any, reason: str, field: str) -> None:
    """No member, no status, or a broken body: each says where."""
    error = letter("infobip", body).error

    assert (reason, field) == (error.reason, error.field)
