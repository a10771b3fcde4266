"""
Dispatch records (``schemas/dispatch.v1.json``) and statuses that wait for one.

The join itself is ``stream/domain/correlate.py``; this module is its edge to bytes and envelopes:
decoding and checking a dispatch record, turning a provider event that names no member into a
status that can wait (``Unclaimed``), and, once its dispatch is known, into the event it would have
been had the provider echoed our member (``claim``). Offline and live use the same functions, so
both give the same events. No Kafka here.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as attribute
from typing import Any

import orjson

from stream.codec import IDENTIFIER_LIMIT, event_from_envelope, parse_time
from stream.codec import _message_type as message_type_of  # one reading of message types for both records
from stream.domain.catalog import CHANNELS
from stream.domain.correlate import Dispatch, Held, Key, Slot
from stream.domain.errors import BadEventError
from stream.domain.model import Event
from stream.providers import registry
from stream.providers.base import NoMemberError

_CONTROL = {chr(c) for c in (*range(32), *range(127, 160))}

# The worker's name for the dispatch topic's records, beside the raw formats.
DISPATCH = "dispatch"
# Record headers the webhook receiver sets from the callback URL's query (issue 12, part 3).
_HEADER_FIELDS = ("member_id", "campaign_id", "message_type", "received_at")


@dataclass(frozen=True, slots=True)
class Unclaimed:
    """
    A provider event that names no member, checked in every other respect: it waits for its dispatch.

    Attributes:
        envelope: its envelope without a member (what ``claim`` completes).
        raw: the event as the provider sent it, for its dead letter if no dispatch comes.
        origin: where it came from (``index`` in its body; file and line, or topic, partition, offset).
        field, message: where the member was looked for, for that dead letter's words.

    """

    envelope: dict[str, Any]
    raw: bytes
    origin: dict[str, Any]
    field: str
    message: str
    # The event as checked with a placeholder member: ``claimed_event`` completes it instead of
    # checking the envelope again where the dispatch cannot change anything else. Not shipped.
    checked: Event | None = attribute(default=None, compare=False, repr=False)

    def at(self, **origin: Any) -> Unclaimed:
        """Return this status with where its record came from."""
        return Unclaimed(self.envelope, self.raw, {**origin, **self.origin}, self.field, self.message, self.checked)

    def fields(self) -> list[Any]:
        """Return it as a JSON-ready array (``from_fields`` reads it back)."""
        return [self.envelope, self.raw.decode(), self.origin, self.field, self.message]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Unclaimed:
        """Return the status ``fields`` described."""
        envelope, raw, origin, field, message = fields
        return cls(envelope, raw.encode(), origin, field, message)


def unclaimed(
    provider: str, error: NoMemberError, raw: bytes, origin: dict[str, Any]
) -> Held[Unclaimed] | BadEventError:
    """
    Return an event without a member as a status that can wait for its dispatch.

    Returns:
        The held status, keyed by its provider and message id; or the error that keeps it out of
        any join: no message id to join on (the no-member error itself), or anything else wrong
        with it (bad time, unknown status: found now, not a day later).

    """
    partial = error.partial
    message_id = partial.get("message_id")
    if not isinstance(message_id, str | int) or isinstance(message_id, bool) or message_id == "":
        return BadEventError(error.reason, error.field, f"{error.message}, and it has no message id to join on")
    try:
        # Every check but the member's: the placeholder makes no difference to anything else.
        event = event_from_envelope({**partial, "member_id": "?"})
    except BadEventError as bad:
        return bad
    key = registry.provider(provider).dispatch_message_id(str(message_id))
    status = Unclaimed(partial, raw, origin, error.field, error.message, event)
    return Held(provider, key, event.event_id, event.decision.occurred_at, status)


def claim(envelope: dict[str, Any], dispatch: Dispatch) -> dict[str, Any]:
    """Return ``envelope`` with the member its dispatch names (its own campaign and message type win)."""
    claimed = {**envelope, "member_id": dispatch.member_id}
    if dispatch.campaign_id is not None and envelope.get("campaign_id") in (None, ""):
        claimed["campaign_id"] = dispatch.campaign_id
    if dispatch.message_type is not None and envelope.get("message_type") in (None, ""):
        claimed["message_type"] = dispatch.message_type
    return claimed


def claimed_event(status: Unclaimed, dispatch: Dispatch) -> Event:
    """
    Return the event a waiting status is, for its dispatch's member.

    Raises:
        BadEventError: the dispatch's member does not make a valid envelope (cannot happen for a
            dispatch ``decode_dispatch`` accepted; kept honest all the same).

    """
    checked, envelope = status.checked, status.envelope
    if checked is not None and "event_id" in envelope and (dispatch.message_type is None or "message_type" in envelope):
        # Only the member and campaign differ from the checked event: the event id is the
        # envelope's own (not derived from the whole envelope), and no message type comes in.
        campaign_id = dispatch.campaign_id if checked.campaign_id is None else checked.campaign_id
        return checked._replace(member_id=dispatch.member_id, campaign_id=campaign_id)
    return event_from_envelope(claim(envelope, dispatch))


def unmatched_error(held: Held[Unclaimed], why: str) -> BadEventError:
    """Return the dead-letter error of a status no dispatch claimed: where the member was looked for, and why not found."""
    status = held.payload
    return BadEventError(
        "unmatched_message",
        status.field,
        f"{status.message}; and {why} for {held.provider} message {held.message_id!r}",
    )


def decode_dispatch(raw: bytes | str | None) -> Dispatch:
    """
    Decode and check one dispatch record (``schemas/dispatch.v1.json``).

    Raises:
        BadEventError: not a JSON object, a missing or ill-typed field, an unknown provider.

    """
    if not raw:
        what = "a null value (a tombstone)" if raw is None else "no bytes"
        raise BadEventError("empty_record", "", f"the dispatch record is {what}")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadEventError("malformed_json", "", f"a dispatch record is not valid JSON: {error}") from None
    if not isinstance(record, dict):
        raise BadEventError("not_an_object", "", f"a dispatch record is a JSON object, got {type(record).__name__}")
    provider = record.get("provider")
    if provider not in registry.PROVIDERS:
        if provider is None:
            raise BadEventError("missing_field", "provider", "a dispatch record names its provider")
        raise BadEventError(
            "unknown_source",
            "provider",
            f"unknown provider {provider!r}; known providers: {', '.join(registry.PROVIDERS)}",
        )
    message_id = _identifier(record, "message_id", required=True)
    channel = record.get("channel")
    if channel is not None and channel not in CHANNELS:
        raise BadEventError("bad_field", "channel", f"{channel!r} is not a channel; channels: {', '.join(CHANNELS)}")
    message_type = message_type_of(record.get("message_type"))  # the envelope's spellings, checked alike
    return Dispatch(
        provider=str(provider),
        message_id=registry.provider(str(provider)).dispatch_message_id(str(message_id)),
        member_id=str(_identifier(record, "member_id", required=True)),
        occurred_at=parse_time(record.get("occurred_at")),
        campaign_id=_identifier(record, "campaign_id", required=False),
        message_type=message_type,
        channel=channel,
    )


def _identifier(record: dict[str, Any], field: str, *, required: bool) -> str | None:
    value = record.get(field)
    if value is None or value == "":
        if required:
            raise BadEventError("missing_field", field, f"a dispatch record needs {field}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadEventError("bad_field", field, f"{field} is a non-empty string or an integer, got {value!r}")
    text = str(value)
    if len(text) > IDENTIFIER_LIMIT:
        raise BadEventError(
            "bad_field", field, f"{field} has {len(text):,} characters; an identifier has at most {IDENTIFIER_LIMIT}"
        )
    if _CONTROL.intersection(text):
        raise BadEventError("bad_field", field, f"{field} {text!r} holds a control character")
    return text


def dispatch_fields(dispatch: Dispatch) -> list[Any]:
    """Return a dispatch as a JSON-ready array (``dispatch_from_fields`` reads it back)."""
    d = dispatch
    return [d.provider, d.message_id, d.member_id, d.occurred_at, d.campaign_id, d.message_type, d.channel]


def dispatch_from_fields(fields: list[Any]) -> Dispatch:
    """Return the dispatch ``dispatch_fields`` described."""
    provider, message_id, member_id, occurred_at, campaign_id, message_type, channel = fields
    return Dispatch(provider, message_id, member_id, occurred_at, campaign_id, message_type, channel)


def dispatch_conflict(kept: Dispatch, member_id: str) -> BadEventError:
    """Return the dead-letter error of a dispatch naming another member than the one kept for its message."""
    return BadEventError(
        "bad_field",
        "member_id",
        f"{kept.provider} message {kept.message_id!r} was dispatched to member {kept.member_id!r} before; "
        f"this dispatch names {member_id!r}: the first one stands",
    )


# The wire formats of the live join: items on the re-keying topic, slots in its changelog.


def key_bytes(key: Key) -> bytes:
    """Return a join key as a record key: ``provider:message_id`` (provider names hold no colon)."""
    return f"{key[0]}:{key[1]}".encode()


def key_of_bytes(raw: bytes) -> Key:
    """Return the join key a record key names."""
    provider, _, message_id = raw.decode().partition(":")
    return (provider, message_id)


def route(item: Dispatch | Held[Unclaimed], partitions: int) -> tuple[int, list[Any]]:
    """
    Return the re-keying topic's partition for a dispatch or a waiting status, and the item as pack fields.

    CRC-32 of ``provider:message_id``, as members are placed by CRC-32 of their id: a message's
    statuses, its dispatch and its slot in the changelog share one partition number.
    """
    key = key_bytes((item.provider, item.message_id))
    if isinstance(item, Dispatch):
        fields: list[Any] = ["d", *dispatch_fields(item)]
    else:
        fields = ["s", item.provider, item.message_id, item.event_id, item.occurred_at, *item.payload.fields()]
    return zlib.crc32(key) % partitions, fields


def item_of(fields: list[Any]) -> Dispatch | Held[Unclaimed]:
    """Return the dispatch or waiting status ``route`` packed."""
    if fields[0] == "d":
        return dispatch_from_fields(fields[1:])
    _, provider, message_id, event_id, occurred_at, *status = fields
    return Held(provider, message_id, event_id, occurred_at, Unclaimed.from_fields(status))


def encode_slot(slot: Slot[Unclaimed]) -> bytes:
    """Return a slot as a changelog value: ``[dispatch fields or null, [[event id, time, status], ...], last seen]``."""
    dispatch = None if slot.dispatch is None else dispatch_fields(slot.dispatch)
    held = [[h.event_id, h.occurred_at, h.payload.fields()] for h in slot.held]
    return orjson.dumps([dispatch, held, slot.last_seen])


def decode_slot(key: Key, raw: bytes) -> Slot[Unclaimed]:
    """Return the slot ``encode_slot`` wrote for ``key``."""
    dispatch, held, last_seen = orjson.loads(raw)
    provider, message_id = key
    return Slot(
        None if dispatch is None else dispatch_from_fields(dispatch),
        tuple(Held(provider, message_id, e, t, Unclaimed.from_fields(s)) for e, t, s in held),
        last_seen,
    )


def known_from_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str] | None:
    """
    Return our fields the webhook receiver passed as record headers (``member_id``, ...), or None.

    The receiver copies a ``member_id`` query parameter of the callback URL (Twilio's, Vonage's) to a
    header of the same name: an event naming no member of its own is that member's.
    """
    if not headers:
        return None
    found = {name: value.decode(errors="replace") for name, value in headers if name in _HEADER_FIELDS and value}
    return found or None
