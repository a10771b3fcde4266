"""
The decoder's two paths agree: the msgspec fast path gives the event or the error the general path gives.

``decode_event`` tries a typed one-pass decode first and hands anything it cannot take to the
general orjson path. If the fast path ever accepted a line the general path rejects, or read a
value differently, dead letters and states would depend on how a provider spelled its JSON.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream import codec
from stream.codec import decode_event
from stream.domain.errors import BadEventError
from stream.domain.model import Event
from stream.synthetic import stream

ABSENT = object()

_text = st.text(max_size=6) | st.sampled_from(["m1", "", "é", "\ud800", "\x00", "a\\b", "\U0001f600"])
_int = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64])
_number = _int | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e308, -0.0, 1.5])
_scalar = st.none() | st.booleans() | _number | _text
_json = st.recursive(
    _scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3), max_leaves=6
)
_times = st.sampled_from(
    [
        "2024-01-01T12:00:00Z",
        "2024-01-01t13:00:00+01:00",
        "2024-01-01 12:00:00.4549996Z",
        "2024-01-01T12:00:00",
        "2024-01-01T12:00Z",
        "2024-02-30T00:00:00Z",
        "1704110400",
        " 1704110400 ",
        "yesterday",
    ]
)
_statuses = st.sampled_from(["DELIVRD", "delivrd", "UNDELIV", "stat:DELIVRD err:000", "LOST", "Delivered", "0", ""])

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "member_id": st.sampled_from(["m1", "m2"]) | _json,
    "event_id": st.sampled_from(["e1", "e2"]) | _json,
    "campaign_id": st.sampled_from(["c1"]) | _json,
    "source": st.sampled_from(["smpp", "idsurvey", "npstoday-sms", "npstoday", "fax"]) | _json,
    "channel": st.sampled_from(["sms", "email", "pager"]) | _json,
    "status": _statuses | _int | _json,
    "message_type": st.sampled_from(["survey", "Reminder", 1, 2, 7]) | _json,
    "message_id": _json,
    "occurred_at": _times | _int | _number | _json,
    "detail": st.dictionaries(_text, _json, max_size=3) | _json,
}
GOOD: dict[str, Any] = {
    "member_id": "m1",
    "event_id": "e1",
    "source": "smpp",
    "status": "DELIVRD",
    "occurred_at": "2024-01-01T12:00:00Z",
}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Return a mostly good envelope with a few fields changed, dropped or added."""
    envelope = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True)):
        value = draw(st.one_of(st.just(ABSENT), FIELDS[name]))
        if value is ABSENT:
            envelope.pop(name, None)
        else:
            envelope[name] = value
    if draw(st.booleans()):
        envelope.update(draw(st.dictionaries(_text, _json, max_size=2)))
    return envelope


@st.composite
def raw_lines(draw: st.DrawFn) -> bytes:
    """Return an encoded envelope, sometimes with odd spacing or a few bytes overwritten."""
    try:
        raw = orjson.dumps(draw(envelopes()))
    except TypeError:  # a lone surrogate cannot be encoded: spell it as an escape instead
        raw = b'{"member_id":"\\ud800","event_id":"e1","source":"smpp","status":"DELIVRD","occurred_at":1}'
    if draw(st.booleans()):
        raw = raw.replace(b'":', b'" : ')
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at + 1 :]
    return raw


def _result(decode: Any, raw: bytes) -> Event | tuple[str, str, str]:
    try:
        event: Event = decode(raw)
    except BadEventError as error:
        return (error.reason, error.field, error.message)
    return event


@settings(max_examples=1000)
@given(raw_lines())
def test_the_fast_path_decodes_every_line_as_the_general_path_does(raw: bytes) -> None:
    """Same Event, or the same reason, field and message, for any line."""
    assert _result(codec._decode_generic, raw) == _result(decode_event, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"member_id":"m1","event_id":"e1","source":"smpp","status":"DELIVRD","occurred_at":1,"x":1e999}',
        b'{"member_id":"m1","event_id":"e1","source":"smpp","status":"DELIVRD","occurred_at":1,"x":"\xff"}',
        b'{"member_id":"m1","event_id":"e1","source":"smpp","status":"DELIVRD","occurred_at":1,"detail":{"a":"\xed\xa0\x80"}}',
        b'{"member_id":"m1","event_id":"e1","source":"smpp","status":"DELIVRD","occurred_at":123456789012345678901234567890}',
        b'{"member_id":"m1","event_id":"e1","source":"smpp","status":"DELIVRD","occurred_at":1,"detail":'
        + b"[" * 1100
        + b"]" * 1100
        + b"}",
    ],
)
def test_what_orjson_rejects_or_reads_differently_is_left_to_the_general_path(raw: bytes) -> None:
    """Values msgspec would skip unchecked or read as another type (infinity, bad UTF-8, huge ints, depth)."""
    assert _result(codec._decode_generic, raw) == _result(decode_event, raw)


def test_the_usual_envelope_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line the generator writes (the benchmark's input) is decoded without the general path."""
    lines = [orjson.dumps(envelope) for envelope in stream(50, 10, seed=3, duplicates=0.1)]
    expected = [decode_event(line) for line in lines]

    def refuse(raw: bytes | str) -> Event:
        raise AssertionError(f"general path taken for {raw!r}")

    monkeypatch.setattr(codec, "_decode_generic", refuse)
    assert expected == [decode_event(line) for line in lines]
