"""
Bytes <-> model: decode event envelopes and encode resolved states.

Envelopes follow ``schemas/envelope.v1.json``, states ``schemas/member-status.v1.json``.
An envelope spelled the usual way is decoded and type-checked in one pass by msgspec; anything
else (a missing event id, an extra field, a wrong type, bad JSON) takes the general path, which
reads it with orjson and says exactly what is wrong. Both give the same Event or the same error
(a differential property test holds them to it); the tests check both agree with the JSON Schemas.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, overload

import msgspec
import orjson

from stream.domain.catalog import ADDITION_BY_CODE, CHANNEL_CODES, CHANNELS, MESSAGE_TYPES, range_of
from stream.domain.classify import SOURCES, classify, default_channel, receipt_stat
from stream.domain.errors import BadEventError
from stream.domain.model import Event, MemberState, Outcome
from stream.domain.precedence import decision, message_key
from stream.domain.vocab import MESSAGE_TYPE_SPELLINGS

_MESSAGE_TYPE_BY_CODE = {c.code: c.shortcode for c in MESSAGE_TYPES}
_MS_THRESHOLD = 100_000_000_000  # as seconds that is the year 5138; as ms, 1973
_STATUS_DOCUMENTS = {
    c.code: {"code": c.code, "shortcode": c.shortcode, "range": range_of(c.code).name}
    for c in ADDITION_BY_CODE.values()
}


def decode_event(raw: bytes | str) -> Event:
    """
    Decode one JSON envelope into a classified Event.

    Raises:
        BadEventError: malformed JSON, a missing or ill-typed field, unknown source/status, bad time.

    """
    try:
        envelope = _decode_typed(raw)
    except (ValueError, RecursionError):  # msgspec's errors are ValueErrors; the general path explains
        return _decode_generic(raw)
    if not envelope.member_id.isprintable():  # rare: the general path tells a control character from the rest
        return _decode_generic(raw)
    source, channel, outcome, reminder, implicit = _outcome(
        envelope.source, envelope.channel, envelope.status, envelope.message_type
    )
    message_id = envelope.message_id
    occurred_at = envelope.occurred_at
    if type(occurred_at) is datetime:
        if occurred_at.tzinfo is None:
            return _decode_generic(raw)  # its error quotes the time as sent
        occurred_at = int(occurred_at.timestamp() * 1000)
    elif type(occurred_at) is not int or occurred_at < _MS_THRESHOLD:
        occurred_at = parse_time(occurred_at)
    return tuple.__new__(
        Event,
        (
            envelope.member_id,
            envelope.campaign_id,
            source,
            channel,
            decision(outcome, occurred_at, f"{source}:{envelope.event_id}"),
            implicit if message_id is None or message_id == "" else f"{channel}#{message_id}",
            reminder,
        ),
    )


def json_error(raw: bytes | str, error: orjson.JSONDecodeError, what: str) -> BadEventError:
    """Return the dead-letter error for a record orjson refused, in words a person can act on."""
    if "infinity" in str(error):  # orjson's word for a number beyond a double, e.g. a 5,000-digit integer
        text = raw.encode() if isinstance(raw, str) else raw
        number = _NUMBER.match(text, error.pos)
        digits = len(number.group()) if number else 0
        return BadEventError(
            "malformed_json",
            "",
            f"{what}: the number at character {error.pos} ({digits:,} characters) is too large for a 64-bit number",
        )
    return BadEventError("malformed_json", "", f"{what}: {error}")


_NUMBER = re.compile(rb"-?[0-9][0-9.eE+-]*")


def _decode_generic(raw: bytes | str) -> Event:
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise json_error(raw, error, "not valid JSON") from None
    if not isinstance(envelope, dict):
        raise BadEventError("not_an_object", "", f"an event is a JSON object, got {type(envelope).__name__}")
    return event_from_envelope(envelope)


# The envelope as the decoder's fast path accepts it: every documented field typed as the general
# path accepts it in the common spelling, no other field (msgspec would skip an unknown field's
# value without the checks orjson makes, e.g. UTF-8 in its strings). Integers are held to 64 bits
# because orjson reads a larger one as a float.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_MessageId = Annotated[str, msgspec.Meta(max_length=256)]  # empty: the channel's implicit message


class _TypedEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    member_id: _Identifier
    source: str
    status: str | _Int64
    occurred_at: datetime | _Int64 | float
    event_id: _Identifier  # without one, the derived id needs the whole envelope: general path
    campaign_id: _Identifier | None = None
    channel: str | None = None
    message_type: str | _Int64 | None = None
    message_id: _MessageId | _Int64 | None = None
    detail: dict[str, Any] | None = None


_decode_typed = msgspec.json.Decoder(_TypedEnvelope).decode


def event_from_envelope(envelope: dict[str, Any]) -> Event:
    """Validate a parsed envelope and classify it (see ``decode_event``)."""
    get = envelope.get
    member_id = _identifier(get("member_id"), "member_id", required=True)
    if _CONTROL.search(member_id):
        raise BadEventError("bad_field", "member_id", f"member_id {member_id!r} holds a control character")
    outcome = _outcome(get("source"), get("channel"), get("status"), get("message_type"))
    message_id = _message_id(get("message_id"))
    source, channel = outcome[0], outcome[1]
    occurred_at = get("occurred_at")
    if type(occurred_at) is not int or occurred_at < _MS_THRESHOLD:
        occurred_at = parse_time(occurred_at)
    campaign_id = _identifier(get("campaign_id"), "campaign_id", required=False)
    detail = get("detail")
    if detail is not None and type(detail) is not dict:
        raise BadEventError("bad_field", "detail", f"detail is an object when present, got {type(detail).__name__}")
    event_id = _identifier(get("event_id"), "event_id", required=False) or derived_event_id(envelope)
    message = outcome[4] if message_id is None else f"{channel}#{message_id}"
    return tuple.__new__(
        Event,
        (
            member_id, campaign_id, source, channel, decision(outcome[2], occurred_at, f"{source}:{event_id}"),
            message, outcome[3],
        ),
    )  # fmt: skip


# (source, channel, status, message_type) as sent -> (source, channel, Outcome, reminder, the key of
# the channel's implicit message). Providers send a few hundred distinct spellings; the cache keeps
# validation and lookup off the hot path.
_Classified = tuple[str, str, Outcome, bool, str]
_OUTCOME_CACHE: dict[tuple[object, ...], _Classified] = {}
_OUTCOME_CACHE_LIMIT = 65_536


def _outcome(source: object, channel: object, status: object, message_type: object) -> _Classified:
    # The types are part of the key: True == 1 and 1.0 == 1 would otherwise pass as a code.
    key = (source, channel, status, message_type, type(status), type(message_type))
    try:
        found = _OUTCOME_CACHE.get(key)
    except TypeError:  # an unhashable (so invalid) field; validated below
        found = None
    if found is not None:
        return found
    stat = _receipt_stat(source, status)
    if stat is not None:  # a whole delivery receipt, unique to its message: classify (and cache) its stat
        return _outcome(source, channel, stat, message_type)
    if not isinstance(source, str):
        raise _missing_or_bad("source", source, "one of " + ", ".join(SOURCES))
    if source not in SOURCES:
        raise BadEventError(
            "unknown_source", "source", f"unknown source {source!r}; known sources: {', '.join(SOURCES)}"
        )
    if not isinstance(status, str | int) or isinstance(status, bool) or status == "":
        raise _missing_or_bad("status", status, "the provider's status, a string or an integer")
    if channel is None:
        channel = default_channel(source)
    elif channel not in CHANNELS:
        raise BadEventError("bad_field", "channel", f"{channel!r} is not a channel; channels: {', '.join(CHANNELS)}")
    kind = _message_type(message_type)
    reminder = kind == "reminder"
    channel = str(channel)
    found = (
        source,
        channel,
        classify(source, channel, status, kind),
        reminder,
        message_key(channel, None, reminder=reminder),
    )
    if len(_OUTCOME_CACHE) >= _OUTCOME_CACHE_LIMIT:  # statuses unique per message must not grow it unbounded
        _OUTCOME_CACHE.clear()
    _OUTCOME_CACHE[key] = found
    return found


def _receipt_stat(source: object, status: object) -> str | None:
    # The same stat classify would read from an SMPP receipt, or None if this is no receipt.
    if source != "smpp" or type(status) is not str or "stat:" not in status.lower():
        return None
    stat = receipt_stat(status)
    return None if stat == status else stat


def derived_event_id(envelope: dict[str, Any]) -> str:
    """Return a stable id for an envelope that has none: the same content gives the same id."""
    return hashlib.blake2b(orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def parse_time(value: object) -> int:
    """
    Return an event time as epoch milliseconds.

    Accepts an RFC 3339 string with an offset (msgspec's parser: the same one the fast path of
    ``decode_event`` uses, so both read a time alike), or epoch seconds or milliseconds (number or
    digits).

    Raises:
        BadEventError: missing, not a time, or without a UTC offset.

    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise BadEventError("bad_time", "occurred_at", f"{value!r} is not a time: epoch values are finite and >= 0")
        return int(value) if value >= _MS_THRESHOLD else int(value * 1000)
    if not isinstance(value, str):
        raise _missing_or_bad("occurred_at", value, "an RFC 3339 time or epoch seconds/milliseconds")
    try:
        moment = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        raise BadEventError("bad_time", "occurred_at", f"{value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise BadEventError("bad_time", "occurred_at", f"{value!r} has no UTC offset; RFC 3339 requires one (e.g. Z)")
    return int(moment.timestamp() * 1000)


def format_time(epoch_ms: int) -> str:
    """Return epoch milliseconds as RFC 3339 UTC with milliseconds, e.g. 2024-01-01T12:00:00.000Z."""
    day, ms_of_day = divmod(epoch_ms, _MS_PER_DAY)
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat() + "T"
    second_of_day, ms = divmod(ms_of_day, 1000)
    clock = _CLOCKS.get(second_of_day)
    if clock is None:
        minutes, second = divmod(second_of_day, 60)
        hour, minute = divmod(minutes, 60)
        clock = _CLOCKS[second_of_day] = f"{hour:02d}:{minute:02d}:{second:02d}."
    return date + clock + _MILLISECONDS[ms]


# A resolved state is encoded once per member and per change: the date, clock and millisecond
# parts of its time repeat across members, so they are built once (the encoder was a sixth of a run).
_MS_PER_DAY = 86_400_000
_DATES: dict[int, str] = {}
_CLOCKS: dict[int, str] = {}  # at most 86,400
_MILLISECONDS = [f"{ms:03d}Z" for ms in range(1000)]


def state_document(state: MemberState) -> dict[str, Any]:
    """Return the public resolved state of a member (``schemas/member-status.v1.json``)."""
    status = state.status
    outcome = status.outcome
    return {
        "member_id": state.member_id,
        "campaign_id": state.campaign_id,
        "status": _STATUS_DOCUMENTS[outcome.code],
        "channels": {
            channel: {
                "code": held.outcome.channel_status,
                "shortcode": CHANNEL_CODES[channel][held.outcome.channel_status].shortcode,
                "final": held.outcome.final,
            }
            for channel, held in state.channels
        },
        "final": outcome.final,
        "updated_at": format_time(-status.earliness),
        "events": state.events,
    }


def encode_state(state: MemberState) -> bytes:
    """Return ``state_document(state)`` as one JSON line's bytes (no newline), as orjson writes it."""
    # Built from pieces: status, channels and final repeat across members, so their JSON is made
    # once per combination; a member costs two string encodings and a time (half of a dict + dumps).
    status = state.status
    outcome = status.outcome
    channels = state.channels
    key = (
        outcome.code,
        outcome.final,
        *((channel, held.outcome.channel_status, held.outcome.final) for channel, held in channels),
    )
    middle = _STATE_MIDDLES.get(key)
    if middle is None:
        if len(_STATE_MIDDLES) >= _OUTCOME_CACHE_LIMIT:  # bounded by the catalogue in practice; be sure
            _STATE_MIDDLES.clear()
        document = state_document(state)
        middle = _STATE_MIDDLES[key] = b"".join(
            (
                b',"status":' + orjson.dumps(document["status"]),
                b',"channels":' + orjson.dumps(document["channels"]),
                b',"final":true,"updated_at":"' if document["final"] else b',"final":false,"updated_at":"',
            )
        )
    return b"".join(
        (
            b'{"member_id":',
            orjson.dumps(state.member_id),
            b',"campaign_id":',
            orjson.dumps(state.campaign_id),
            middle,
            format_time(-status.earliness).encode(),
            b'","events":',
            str(state.events).encode(),
            b"}",
        )
    )


_STATE_MIDDLES: dict[tuple[Any, ...], bytes] = {}


# Identifiers travel in every pack, state and output record: an absurd one (a whole document pasted
# in) would make each of them too large for Kafka, so they are held to a length no real id reaches.
IDENTIFIER_LIMIT = 256
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@overload
def _identifier(value: object, field: str, *, required: Literal[True]) -> str: ...
@overload
def _identifier(value: object, field: str, *, required: bool) -> str | None: ...
def _identifier(value: object, field: str, *, required: bool) -> str | None:
    if type(value) is str and 0 < len(value) <= IDENTIFIER_LIMIT:
        return value
    if value is None:
        if required:
            raise BadEventError("missing_field", field, f"{field} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise BadEventError("bad_field", field, f"{field} is a non-empty string or an integer, got {value!r}")
    text = str(value)
    if len(text) > IDENTIFIER_LIMIT:
        raise BadEventError(
            "bad_field", field, f"{field} has {len(text):,} characters; an identifier has at most {IDENTIFIER_LIMIT}"
        )
    return text


def _message_type(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value in _MESSAGE_TYPE_BY_CODE:
        return _MESSAGE_TYPE_BY_CODE[value]
    if isinstance(value, str):
        name = MESSAGE_TYPE_SPELLINGS.get(value.lower())
        if name is not None:
            return name
    raise BadEventError(
        "bad_field", "message_type", f"{value!r} is not a message type; one of survey, reminder, manualResend"
    )


def _message_id(value: object) -> str | None:
    # Which message an event reports on; absent or empty: the channel's implicit message.
    if value is None or value == "":
        return None
    return _identifier(value, "message_id", required=False)


def _missing_or_bad(field: str, value: object, expected: str) -> BadEventError:
    if value is None:
        return BadEventError("missing_field", field, f"{field} is required: {expected}")
    return BadEventError("bad_field", field, f"{field} must be {expected}, got {value!r}")
