"""WhatsApp Cloud API webhooks: every status and error code, biz_opaque_callback_data, nested bodies."""

from __future__ import annotations

from typing import Any

import pytest

from stream.domain.model import Event
from stream.providers import whatsapp
from tests.providers_support import decoded, letter, outcome

# (status, errors[0].code) per vocabulary entry, as Meta documents statuses and error codes
# (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
CASES: dict[str | int, tuple[str, int | None, int, bool]] = {
    "sent": ("sent", None, 2010, False),
    "delivered": ("delivered", None, 2020, True),
    "read": ("read", None, 2030, True),
    "played": ("played", None, 2030, True),
    "failed": ("failed", 999_999, 5000, True),
    **{
        code: ("failed", code, expected, True)
        for code, expected in {
            131026: 5001,
            131050: 4006,
            131047: 5000,
            131049: 5000,
            131048: 5000,
            131056: 5000,
            130429: 5000,
            131000: 5000,
            131016: 5000,
            131031: 5000,
            131042: 5000,
            131051: 5000,
            131053: 5000,
            132000: 5000,
            132001: 5000,
            132015: 5000,
            132016: 5000,
            190: 5000,
        }.items()
    },
}


def status(name: str, code: int | None = None, opaque: str | None = "member_id=cm-1&campaign_id=c-9") -> dict[str, Any]:
    """Return one statuses[] item as Meta sends it."""
    item: dict[str, Any] = {
        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTRBNjYzOUNBQzYzRDc0MDQA",
        "status": name,
        "timestamp": "1735732800",
        "recipient_id": "4512345678",
    }
    if opaque is not None:
        item["biz_opaque_callback_data"] = opaque
    if code is not None:
        item["errors"] = [{"code": code, "title": "Message undeliverable", "error_data": {"details": "…"}}]
    return item


def webhook(*statuses: dict[str, Any]) -> dict[str, Any]:
    """Return a webhook body holding ``statuses`` in one change."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "106540352242922"},
        "statuses": list(statuses),
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def test_the_table_covers_every_whatsapp_status_and_error_code() -> None:
    """Each vocabulary entry has a documented status below."""
    assert set(whatsapp.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "name", "code", "expected", "final"), [(k, *v) for k, v in CASES.items()])
def test_a_whatsapp_status_resolves_as_documented(
    key: str | int, name: str, code: int | None, expected: int, final: bool
) -> None:
    """The error code decides a failure when Meta sends a known one; else the status does."""
    assert (expected, final) == outcome("whatsapp", webhook(status(name, code)))


def test_every_status_of_every_change_is_an_event_and_inbound_messages_are_none() -> None:
    """Two entries, one with an inbound message only: the statuses become events, nothing else."""
    body = webhook(status("sent"), status("delivered"))
    body["entry"].append(
        {"changes": [{"value": {"messages": [{"from": "4512345678", "type": "text"}]}, "field": "messages"}]}
    )
    events = decoded("whatsapp", body)

    assert [2010, 2020] == [e.decision.outcome.code for e in events if isinstance(e, Event)]
    assert 2 == len(events)


@pytest.mark.parametrize("opaque", ['{"member_id": "cm-1", "campaign_id": "c-9"}', "member_id=cm-1&campaign_id=c-9"])
def test_biz_opaque_callback_data_is_read_as_json_or_as_a_query_string(opaque: str) -> None:
    """Both spellings give the member and the campaign."""
    (event,) = decoded("whatsapp", webhook(status("read", opaque=opaque)))

    assert isinstance(event, Event)
    assert ("cm-1", "c-9", "whatsapp") == (event.member_id, event.campaign_id, event.channel)


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (webhook(status("read", opaque=None)), "missing_field", "[0].biz_opaque_callback_data"),
        (webhook(status("read", opaque="just text")), "missing_field", "[0].biz_opaque_callback_data"),
        (webhook({"id": "wamid.1"}), "missing_field", "[0].status"),
        (webhook("nope"), "not_an_object", "[0]"),  # type: ignore[arg-type]
        ({"object": "whatsapp_business_account"}, "missing_field", "entry"),
        (b"[]", "not_an_object", ""),
        (b"{", "malformed_json", ""),
    ],
)
def test_a_bad_whatsapp_body_is_dead_lettered_with_where(body: Any, reason: str, field: str) -> None:
    """No member, no status, or a broken body: each says where."""
    error = letter("whatsapp", body).error

    assert (reason, field) == (error.reason, error.field)
