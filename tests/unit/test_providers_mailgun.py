"""Mailgun webhooks: every event, severity and failure reason, user-variables, bad bodies."""

from __future__ import annotations

from typing import Any

import pytest

from stream.domain.model import Event
from stream.providers import mailgun
from tests.providers_support import decoded, letter, outcome

# (event, severity, reason) per vocabulary entry, as Mailgun's event types page documents them
# (https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types).
CASES: dict[str | int, tuple[str, str | None, str | None, int, bool]] = {
    "accepted": ("accepted", None, None, 2010, False),
    "delivered": ("delivered", None, None, 2020, True),
    "opened": ("opened", None, None, 2030, True),
    "clicked": ("clicked", None, None, 2040, True),
    "unsubscribed": ("unsubscribed", None, None, 3010, True),
    "complained": ("complained", None, None, 3010, True),
    "rejected": ("rejected", None, None, 5100, True),
    "failed/temporary": ("failed", "temporary", "generic", 2010, False),
    "failed/permanent": ("failed", "permanent", "hardfail", 5101, True),
    "failed/permanent/bounce": ("failed", "permanent", "bounce", 5101, True),
    "failed/permanent/suppress-bounce": ("failed", "permanent", "suppress-bounce", 4006, True),
    "failed/permanent/suppress-unsubscribe": ("failed", "permanent", "suppress-unsubscribe", 4006, True),
    "failed/permanent/suppress-complaint": ("failed", "permanent", "suppress-complaint", 4006, True),
    "failed/permanent/espblock": ("failed", "permanent", "espblock", 5100, True),
    "failed/permanent/old": ("failed", "permanent", "old", 5100, True),
    "failed/permanent/generic": ("failed", "permanent", "generic", 5100, True),
}


def webhook(event: str, severity: str | None = None, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return a webhook body as Mailgun posts it, with our custom variables."""
    data: dict[str, Any] = {
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "timestamp": 1_735_732_800.529_7,
        "log-level": "info" if severity is None else "error",
        "event": event,
        "recipient": "respondent@example.com",
        "message": {"headers": {"message-id": "20250101120000.1.ABCDEF@mg.nps.example"}},
        "user-variables": {"member_id": "cm-1", "campaign_id": "c-9"},
        **extra,
    }
    if severity is not None:
        data |= {
            "severity": severity,
            "reason": reason,
            "delivery-status": {"code": 550, "description": "No such user"},
        }
    return {
        "signature": {"timestamp": "1735732800", "token": "a8ce0edb2dd8", "signature": "d2271d12299f"},
        "event-data": data,
    }


def test_the_table_covers_every_mailgun_event_and_reason() -> None:
    """Each vocabulary entry has a documented body below."""
    assert set(mailgun.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "event", "severity", "reason", "code", "final"), [(k, *v) for k, v in CASES.items()])
def test_a_mailgun_event_resolves_as_documented(
    key: str, event: str, severity: str | None, reason: str | None, code: int, final: bool
) -> None:
    """The event, and for a failure its severity and reason, decide the outcome."""
    assert (code, final) == outcome("mailgun", webhook(event, severity, reason))


def test_a_mailgun_event_keeps_its_ids_and_our_variables() -> None:
    """event-data.id is the event id, the Message-Id header the message id, user-variables the member."""
    (event,) = decoded("mailgun", webhook("delivered"))

    assert isinstance(event, Event)
    assert ("cm-1", "c-9", "mailgun:CPgfbmQMTCKtHW6uIWtuVe") == (event.member_id, event.campaign_id, event.event_id)
    assert 1_735_732_800_529 == event.decision.occurred_at


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (
            webhook("delivered", None, None, **{"user-variables": {}}),
            "missing_field",
            "[0].event-data.user-variables.member_id",
        ),
        ({"signature": {}}, "missing_field", "[0].event-data"),
        ({"event-data": {"timestamp": 1}}, "missing_field", "[0].event-data.event"),
        (b"{not json", "malformed_json", ""),
        (b"7", "not_an_object", ""),
        ([1], "not_an_object", "[0]"),
    ],
)
def test_a_bad_mailgun_body_is_dead_lettered_with_where(body: Any, reason: str, field: str) -> None:
    """No member, no event-data, no event name, or a broken body: each says where."""
    error = letter("mailgun", body).error

    assert (reason, field) == (error.reason, error.field)
