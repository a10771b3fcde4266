"""Dead letters: specific, proportionate, small enough for Kafka, and no more personal data than needed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from stream.codec import decode_event
from stream.domain.errors import BadEventError
from stream.resolver import RAW_KEPT_BYTES, DeadLetter, describe, events_of

GOOD = {"source": "smpp", "status": "DELIVRD", "occurred_at": 1_735_689_600, "event_id": "e1"}
KAFKA_DEFAULT_MAX_MESSAGE = 1_048_588


def letters_of(record: bytes | None, record_format: str = "envelope") -> list[DeadLetter]:
    """Return the dead letters one record makes."""
    return [item for item in events_of(record, record_format) if isinstance(item, DeadLetter)]


@pytest.mark.parametrize(
    ("record", "words"),
    [(None, "a null value (a tombstone)"), (b"", "no bytes")],
)
def test_a_null_or_empty_record_is_dead_lettered_with_its_own_reason(record: bytes | None, words: str) -> None:
    """A tombstone on a raw topic is not malformed JSON: it has a reason of its own, in both formats."""
    for record_format in ("envelope", "sendgrid"):
        (letter,) = letters_of(record, record_format)

        assert ("empty_record", "") == (letter.error.reason, letter.error.field)
        assert words in letter.error.message
        assert record == (letter.document()["raw"] or (b"" if record == b"" else None))


@pytest.mark.parametrize(
    "raw",
    [b"\x00" * 200_000, b"\xff\xfe" * 400_000, b"{" * 3_000_000],
    ids=["200 KB of NUL bytes", "800 KB of non-UTF-8", "3 MB of brackets"],
)
def test_a_huge_bad_record_keeps_prefix_size_and_digest_and_fits_the_topic(
    raw: bytes, validate: Callable[[str, Any], None]
) -> None:
    """JSON escaping (a NUL byte becomes six characters) or base64 cannot push a letter past Kafka's 1 MB default."""
    (letter,) = letters_of(raw)
    document = letter.at(topic="message-events", partition=3, offset=17).document()
    encoded = orjson.dumps(document)

    validate("dead-letter.v1.json", document)
    assert len(encoded) < 64 * 1024
    assert (len(raw), hashlib.sha256(raw).hexdigest()) == (document["raw_size"], document["raw_sha256"])
    assert ("message-events", 3, 17) == (document["topic"], document["partition"], document["offset"])
    assert "raw" not in document


def test_a_record_up_to_the_limit_is_kept_whole() -> None:
    """Up to 64 KiB the letter holds the record itself, byte for byte."""
    raw = b"x" * RAW_KEPT_BYTES

    (letter,) = letters_of(raw)

    assert raw.decode() == letter.document()["raw"]


def test_a_sendgrid_body_with_a_thousand_bad_events_makes_letters_about_its_own_size() -> None:
    """Each letter carries its one event and index, not the whole body with every address in it."""
    events = [
        {"event": "delivered", "email": f"person{i}@example.com", "timestamp": 1_735_689_600} for i in range(1000)
    ]
    body = orjson.dumps(events)

    letters = letters_of(body, "sendgrid")
    total = sum(len(orjson.dumps(letter.document())) for letter in letters)

    assert 1000 == len(letters)
    assert total < 4 * len(body)  # each letter: its event (~77 B) plus reason and message (~170 B)
    assert list(range(1000)) == [letter.document()["index"] for letter in letters]
    assert events[7] == orjson.loads(letters[7].document()["raw"])
    assert "missing_field" == letters[7].error.reason


@pytest.mark.parametrize(
    ("member_id", "words"),
    [("m" * 257, "257 characters"), ("a\nb", "control character"), ("a\x00b", "control character")],
)
def test_an_absurd_member_id_is_refused_with_a_clear_reason(member_id: str, words: str) -> None:
    """Over 256 characters or with control characters, a member id is a bad field, on both decoder paths."""
    for extra in ({}, {"unknown": 1}):  # the second skips the typed fast path
        with pytest.raises(BadEventError) as refused:
            decode_event(orjson.dumps({**GOOD, **extra, "member_id": member_id}))

        assert ("bad_field", "member_id") == (refused.value.reason, refused.value.field)
        assert words in refused.value.message


def test_a_member_id_of_256_characters_in_any_script_is_accepted() -> None:
    """The limit is generous: real ids (UUIDs, CRM keys, non-ASCII names) pass."""
    member_id = "ø" * 256

    assert member_id == decode_event(orjson.dumps({**GOOD, "member_id": member_id})).member_id


def test_a_5000_digit_integer_is_reported_as_too_large_not_as_infinity() -> None:
    """The parser calls it infinity; the person reading the letter is told its size and place."""
    raw = b'{"member_id": "m", "status": ' + b"9" * 5000 + b"}"

    with pytest.raises(BadEventError) as refused:
        decode_event(raw)

    assert "infinity" not in refused.value.message
    assert "5,000 characters" in refused.value.message


def test_an_error_message_never_carries_a_huge_value() -> None:
    """A 1 MB status is quoted in the message only as far as a person needs."""
    with pytest.raises(BadEventError) as refused:
        decode_event(orjson.dumps({**GOOD, "member_id": "m", "status": "S" * 1_000_000}))

    assert len(refused.value.message) < 600


def test_describe_gives_where_what_and_why_without_the_bytes() -> None:
    """The one-line form (stderr without --dlq) names file, line, reason, field and message only."""
    (letter,) = letters_of(orjson.dumps({**GOOD, "member_id": "m", "email": "secret@example.com", "status": "LOST"}))

    line = describe(letter.at(file="in.jsonl", line=4).document())

    assert line.startswith("in.jsonl:4: unknown_status in field 'status': ")
    assert "secret@example.com" not in line
