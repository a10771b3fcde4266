"""Vonage SMS delivery receipts: every status and err-code, the member from the URL or client-ref, times."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from stream.domain.model import Event
from stream.providers import vonage
from tests.providers_support import decoded, letter, outcome

# (status, err-code) per vocabulary entry, as Vonage's delivery receipt guide documents them
# (https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts).
CASES: dict[str | int, tuple[str, str, int, bool]] = {
    "accepted": ("accepted", "0", 2010, False),
    "buffered": ("buffered", "0", 2010, False),
    "delivered": ("delivered", "0", 2020, True),
    "failed": ("failed", "0", 5201, True),
    "expired": ("expired", "0", 5200, True),
    "rejected": ("rejected", "0", 5200, True),
    "unknown": ("unknown", "0", 5200, True),
    **{
        code: ("failed" if code in {3, 4, 9, 12, 14, 15} else "rejected", str(code), expected, True)
        for code, expected in {
            1: 5200,
            2: 5200,
            3: 5201,
            4: 5201,
            5: 5200,
            6: 5200,
            7: 5200,
            8: 5200,
            9: 4006,
            10: 5200,
            11: 5200,
            12: 5201,
            13: 5200,
            14: 5201,
            15: 5201,
            16: 5200,
            50: 5200,
            51: 5200,
            52: 5200,
            53: 5200,
            54: 5200,
            99: 5200,
        }.items()
    },
}


def receipt(status: str, err_code: str = "0", **extra: Any) -> dict[str, Any]:
    """Return a delivery receipt as Vonage posts it, with the member_id the callback URL carried."""
    return {
        "msisdn": "4512345678",
        "to": "NPSTODAY",
        "network-code": "23820",
        "messageId": "0A0000001234567B",
        "price": "0.03330000",
        "status": status,
        "scts": "2501011201",
        "err-code": err_code,
        "api-key": "abcd1234",
        "message-timestamp": "2025-01-01 12:01:05",
        "member_id": "cm-1",
        **extra,
    }


def test_the_table_covers_every_vonage_status_and_error_code() -> None:
    """Each vocabulary entry has a documented receipt below."""
    assert set(vonage.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "status", "err_code", "code", "final"), [(k, *v) for k, v in CASES.items()])
def test_a_vonage_receipt_resolves_as_documented(
    key: str | int, status: str, err_code: str, code: int, final: bool
) -> None:
    """The err-code decides a failure when the table knows it; else the status does."""
    assert (code, final) == outcome("vonage", receipt(status, err_code))


def test_a_form_encoded_receipt_reads_like_json_and_keeps_its_time() -> None:
    """Vonage's GET/form receipts carry the same fields; message-timestamp is UTC."""
    (event,) = decoded("vonage", urllib.parse.urlencode(receipt("delivered")))

    assert isinstance(event, Event)
    assert (2020, 1_735_732_865_000) == (event.decision.outcome.code, event.decision.occurred_at)


def test_the_member_comes_from_client_ref_when_the_url_carried_none() -> None:
    """client-ref holds our data as a query string when no member_id field was passed on."""
    body = receipt("delivered", **{"client-ref": "member_id=cm-7&campaign_id=c-1"})
    del body["member_id"]
    (event,) = decoded("vonage", body)

    assert isinstance(event, Event)
    assert ("cm-7", "c-1") == (event.member_id, event.campaign_id)


def test_without_message_timestamp_the_carrier_scts_is_the_time() -> None:
    """The carrier's scts is YYMMDDhhmm, UTC."""
    body = receipt("delivered")
    del body["message-timestamp"]
    (event,) = decoded("vonage", body)

    assert isinstance(event, Event)
    assert 1_735_732_860_000 == event.decision.occurred_at


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ({k: v for k, v in receipt("delivered").items() if k != "member_id"}, "missing_field", "[0].member_id"),
        ({"messageId": "x", "member_id": "cm-1"}, "missing_field", "[0].status"),
        (b"[1]", "not_an_object", ""),
        (b"a=1&&&b", "malformed_json", ""),
        (b'{"status": ', "malformed_json", ""),
    ],
)
def test_a_bad_vonage_body_is_dead_lettered_with_where(body: Any, reason: str, field: str) -> None:
    """No member, no status, or a broken body: each says where."""
    error = letter("vonage", body).error

    assert (reason, field) == (error.reason, error.field)
    if field == "[0].member_id":
        assert "client-ref" in error.message
