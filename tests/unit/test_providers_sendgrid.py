"""SendGrid Event Webhook bodies: every event name and drop reason, custom args, bad bodies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.providers import sendgrid
from tests.providers_support import letter, outcome

# One documented event per vocabulary entry:
# https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
CASES: dict[str | int, tuple[dict[str, Any], int, bool]] = {
    "processed": ({"event": "processed"}, 2010, False),
    "deferred": ({"event": "deferred", "response": "400 try again later", "attempt": "5"}, 2010, False),
    "bounce": ({"event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 unknown user"}, 5101, True),
    "blocked": ({"event": "bounce", "type": "blocked", "reason": "554 blocked by policy"}, 5100, True),
    "dropped": ({"event": "dropped", "reason": "Recipient List over Package Quota"}, 5100, True),
    "dropped/Invalid": ({"event": "dropped", "reason": "Invalid"}, 4005, True),
    "dropped/Bounced Address": ({"event": "dropped", "reason": "Bounced Address"}, 4006, True),
    "dropped/Unsubscribed Address": ({"event": "dropped", "reason": "Unsubscribed Address"}, 4006, True),
    "dropped/Spam Reporting Address": ({"event": "dropped", "reason": "Spam Reporting Address"}, 4006, True),
    "delivered": ({"event": "delivered", "response": "250 OK"}, 2020, True),
    "open": ({"event": "open", "useragent": "Mozilla/5.0"}, 2030, True),
    "click": ({"event": "click", "url": "https://survey.example/s/1"}, 2040, True),
    "spamreport": ({"event": "spamreport"}, 3010, True),
    "unsubscribe": ({"event": "unsubscribe"}, 3010, True),
    "group_unsubscribe": ({"event": "group_unsubscribe", "asm_group_id": 10}, 3010, True),
    "group_resubscribe": ({"event": "group_resubscribe", "asm_group_id": 10}, 2040, True),
}


def _event(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "email": "respondent@example.com",
        "timestamp": 1_704_110_400,
        "sg_event_id": "sg-1",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "member_id": "cm-1",
        "campaign_id": "c-9",
        **fields,
    }


def test_the_table_covers_every_sendgrid_status() -> None:
    """Each vocabulary entry has a documented event below."""
    assert set(sendgrid.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "fields", "code", "final"), [(k, *v) for k, v in CASES.items()])
def test_a_sendgrid_event_resolves_as_documented(key: str, fields: dict[str, Any], code: int, final: bool) -> None:
    """The event name (with bounce type and drop reason) decides the outcome."""
    assert (code, final) == outcome("sendgrid", [_event(fields)])


def test_a_sendgrid_event_keeps_the_message_id_and_the_event_id() -> None:
    """sg_message_id is the envelope's message_id, sg_event_id its event id; no address travels on."""
    ((_, envelope),) = sendgrid.envelopes_from_body(orjson.dumps([_event({"event": "open"})]))

    assert isinstance(envelope, dict)
    assert ("sg-1", "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0") == (
        envelope["event_id"],
        envelope["message_id"],
    )
    assert "respondent@example.com" not in str(envelope)


def test_a_sendgrid_event_without_the_member_id_custom_arg_is_dead_lettered_saying_where_it_looked() -> None:
    """The letter names the custom arg member_id."""
    event = _event({"event": "delivered"})
    del event["member_id"]

    error = letter("sendgrid", [event]).error

    assert ("missing_field", "[0].member_id") == (error.reason, error.field)
    assert "custom args" in error.message


@pytest.mark.parametrize(("body", "reason"), [(b"[{", "malformed_json"), (b'"text"', "not_an_object")])
def test_a_malformed_sendgrid_body_is_dead_lettered_whole(body: bytes, reason: str) -> None:
    """One letter for the body, with its reason."""
    assert reason == letter("sendgrid", body).error.reason
