"""Twilio status callbacks: every status and error code, SMS and WhatsApp, the member and the time."""

from __future__ import annotations

import urllib.parse

import pytest

from stream.dispatches import known_from_headers
from stream.domain.model import Event
from stream.providers import twilio
from stream.resolver import items_of
from tests.providers_support import decoded, letter, outcome

# (MessageStatus, ErrorCode) per vocabulary entry, as the status callback guide and the error
# pages document them (https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks,
# https://www.twilio.com/docs/api/errors/<code>).
CASES: dict[str | int, tuple[str, str, int, bool]] = {
    "accepted": ("accepted", "", 2010, False),
    "scheduled": ("scheduled", "", 10, False),
    "queued": ("queued", "", 2010, False),
    "sending": ("sending", "", 2010, False),
    "sent": ("sent", "", 2010, False),
    "delivered": ("delivered", "", 2020, True),
    "partially_delivered": ("partially_delivered", "", 2020, True),
    "read": ("read", "", 2030, True),
    "undelivered": ("undelivered", "", 5201, True),
    "failed": ("failed", "", 5200, True),
    "canceled": ("canceled", "", 4000, True),
    30001: ("failed", "30001", 5200, True),
    30002: ("failed", "30002", 5200, True),
    30003: ("undelivered", "30003", 5201, True),
    30004: ("undelivered", "30004", 5201, True),
    30005: ("undelivered", "30005", 5201, True),
    30006: ("undelivered", "30006", 5202, True),
    30007: ("undelivered", "30007", 5200, True),
    30008: ("undelivered", "30008", 5200, True),
    30009: ("failed", "30009", 5200, True),
    30010: ("failed", "30010", 5200, True),
    30022: ("failed", "30022", 5200, True),
    30032: ("failed", "30032", 5200, True),
    30034: ("failed", "30034", 5200, True),
    21211: ("failed", "21211", 4004, True),
    21408: ("failed", "21408", 5200, True),
    21610: ("failed", "21610", 4006, True),
    21612: ("failed", "21612", 5202, True),
    21614: ("failed", "21614", 5202, True),
    63003: ("failed", "63003", 5201, True),
    63016: ("failed", "63016", 5200, True),
    63024: ("failed", "63024", 5201, True),
}


def callback(status: str, error_code: str = "", **extra: str) -> bytes:
    """Return a status callback body as Twilio posts it, plus the member_id the callback URL carried."""
    fields = {
        "ApiVersion": "2010-04-01",
        "AccountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "MessageSid": "SM1342fe1b2c904d1ab04f0fc7a58abca9",
        "SmsSid": "SM1342fe1b2c904d1ab04f0fc7a58abca9",
        "MessageStatus": status,
        "SmsStatus": status,
        "From": "+15017250604",
        "To": "+4512345678",
        "member_id": "cm-1",
        "received_at": "2025-01-01T12:00:05Z",
        **({"ErrorCode": error_code} if error_code else {}),
        **extra,
    }
    return urllib.parse.urlencode(fields).encode()


def test_the_table_covers_every_twilio_status_and_error_code() -> None:
    """Each vocabulary entry has a documented callback below."""
    assert set(twilio.VOCABULARY) == set(CASES)


@pytest.mark.parametrize(("key", "status", "error_code", "code", "final"), [(k, *v) for k, v in CASES.items()])
def test_a_twilio_sms_callback_resolves_as_documented(
    key: str | int, status: str, error_code: str, code: int, final: bool
) -> None:
    """The error code decides a failure when Twilio sends a known one; else the status does."""
    assert (code, final) == outcome("twilio", callback(status, error_code))


def test_a_whatsapp_callback_through_twilio_is_on_the_whatsapp_channel() -> None:
    """A whatsapp: address (or ChannelPrefix) puts the event on WhatsApp, where a bounce is 5001."""
    body = callback("undelivered", "63024", To="whatsapp:+4512345678", ChannelPrefix="whatsapp")
    (event,) = decoded("twilio", body)

    assert isinstance(event, Event)
    assert ("whatsapp", 5001) == (event.channel, event.decision.outcome.code)


def test_an_unknown_error_code_falls_back_to_the_status() -> None:
    """An error code the table lacks leaves undelivered a bounce."""
    assert (5201, True) == outcome("twilio", callback("undelivered", "39999"))


def test_the_carrier_done_date_is_the_event_time_when_twilio_passes_it_on() -> None:
    """RawDlrDoneDate (YYMMDDhhmm) beats the poster's received_at."""
    (event,) = decoded("twilio", callback("delivered", RawDlrDoneDate="2501011201"))

    assert isinstance(event, Event)
    assert 1_735_732_860_000 == event.decision.occurred_at


def test_a_callback_through_the_receiver_takes_its_time_and_member_from_the_record_headers() -> None:
    """The receiver writes Twilio's body unchanged; its headers carry received_at and the URL's member_id."""
    body = b"MessageSid=SM9&MessageStatus=delivered&To=%2B4512345678"
    headers = [("member_id", b"cm-9"), ("received_at", b"2025-01-01T12:00:00Z"), ("format", b"twilio")]

    (event,) = items_of(body, "twilio", known_from_headers(headers))

    assert isinstance(event, Event)
    assert ("cm-9", 1_735_732_800_000, 2020) == (
        event.member_id,
        event.decision.occurred_at,
        event.decision.outcome.code,
    )


def test_a_twilio_json_body_reads_like_a_form() -> None:
    """A poster that turned the form into JSON is read the same."""
    body = b'{"MessageSid": "SM1", "MessageStatus": "delivered", "member_id": "cm-1", "received_at": 1735732800}'
    assert (2020, True) == outcome("twilio", body)


@pytest.mark.parametrize(
    ("body", "reason", "field", "words"),
    [
        (callback("delivered", member_id=""), "missing_field", "[0].member_id", "status callback URL"),
        (callback("delivered", received_at=""), "missing_field", "[0].received_at", "received_at"),
        (b"MessageSid=SM1&member_id=cm-1", "missing_field", "[0].MessageStatus", "status"),
        (b"a=1&&&b", "malformed_json", "", "form-encoded"),
        (b"[1]", "not_an_object", "", "one object"),
    ],
)
def test_a_twilio_callback_without_what_it_needs_is_dead_lettered_with_where(
    body: bytes, reason: str, field: str, words: str
) -> None:
    """No member, no time, no status, or no form at all: each says what and where."""
    error = letter("twilio", body).error

    assert (reason, field) == (error.reason, error.field)
    assert words in error.message
