"""
Internal wire formats: event packs on the re-keying topic, member states in their changelog.

Compact JSON arrays rather than the public documents: the worker reads them back often, and
they must carry what the public state leaves out (each message's deciding event, the digest of
event ids).

Changelog states carry a format version as their first element (``STATE_FORMAT``). Format 1
(statusflow before per-message resolution) had no version: ``[member_id, ...]``; format 2 kept
every event id. Both are migrated on read (``decode_state``). A version this worker does not know
is refused with a clear error, never guessed at.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson

from stream.domain import digest, milestones
from stream.domain.model import Decision, Event, MemberState, MessageState, Outcome
from stream.domain.precedence import channel_of, decision, from_messages, message_key, message_state
from stream.domain.precedence import outcome as new_outcome

_new = tuple.__new__

STATE_FORMAT = 3


class StateFormatError(ValueError):
    """A changelog record in a format this worker cannot read."""


def event_fields(event: Event) -> tuple[Any, ...]:
    """Return a classified event as a JSON-ready array (one entry of a pack on the re-keying topic)."""
    held = event.decision
    outcome = held.outcome
    return (
        event.member_id, event.campaign_id, event.source, event.channel,
        outcome.code, outcome.final, outcome.channel_status, held.earliness, held.event_id,
        event.message, event.reminder,
    )  # fmt: skip


def event_from_fields(fields: list[Any]) -> Event:
    """Return the event ``event_fields`` described (also the 9 fields of packs written before messages)."""
    if len(fields) == 11:  # the fields of event_fields
        member_id, campaign_id, source, channel, code, final, channel_status, earliness, event_id, message, reminder = (
            fields
        )
    else:  # a pack from a worker before per-message resolution: the channel's implicit message
        member_id, campaign_id, source, channel, code, final, channel_status, earliness, event_id = fields
        reminder = code == 2050  # Reminded: what the old classifier made of a reminder's handover
        message = message_key(channel, None, reminder=reminder)
    # The strength and milestones are recomputed, not shipped: a pack written before a change of
    # the rank table must be judged by the table of the worker that reads it. The Outcome is cached
    # (a vocabulary yields a few hundred) and tuple.__new__ builds the rest: this is per event.
    key = (code, final, channel_status, channel)
    outcome = _OUTCOMES.get(key) or _outcome(key)
    decided = _new(Decision, (outcome.strength, earliness, event_id, outcome))
    return _new(Event, (member_id, campaign_id, source, channel, decided, message, reminder))


_OUTCOMES: dict[tuple[int, bool, int, str], Outcome] = {}


def _outcome(key: tuple[int, bool, int, str]) -> Outcome:
    code, final, channel_status, channel = key
    if len(_OUTCOMES) >= 65_536:  # bounded by the vocabularies in practice; be sure
        _OUTCOMES.clear()
    found = _OUTCOMES[key] = new_outcome(code, final, channel_status, milestones.bits(channel, code, channel_status))
    return found


def decode_pack(raw: bytes) -> list[Event]:
    """Return the events of one pack: a JSON array of ``event_fields`` lists."""
    return [event_from_fields(fields) for fields in orjson.loads(raw)]


# States beyond this size are stored zlib-compressed behind a one-byte frame (a JSON array never
# starts with this byte). Since format 3 a state holds at most 32 event ids or a 2 KiB filter, so
# only a member with thousands of messages gets there; format-2 records (every id) may be compressed.
COMPRESS_FROM = 64 * 1024
_COMPRESSED = b"z"


def encode_state(state: MemberState) -> bytes:
    """
    Return a member state as bytes for the member states' changelog (format 3; large ones compressed).

    ``[3, member_id, campaign_id, [[message key, reminder, decision, milestones], ...], seen]``:
    ``seen`` is the sorted list of event ids while the digest is exact, else the filter's bytes in
    base64 (``digest``). The status and channel statuses are derived from the messages when read.
    """
    encoded = _encode_state(state)
    if len(encoded) > COMPRESS_FROM:
        return _COMPRESSED + zlib.compress(encoded, 1)
    return encoded


def _encode_state(state: MemberState) -> bytes:
    return orjson.dumps(
        [
            STATE_FORMAT,
            state.member_id,
            state.campaign_id,
            [[key, message.reminder, _decision(message.best), message.reached] for key, message in state.messages],
            _seen(state.seen),
        ]
    )


def _seen(seen: digest.Seen) -> list[str] | str:
    if isinstance(seen, int):
        return base64.b64encode(digest.to_bytes(seen)).decode()
    return sorted(seen)


def _unseen(raw: bytes, fields: Any) -> digest.Seen:
    if isinstance(fields, list):
        return digest.of(fields)
    try:
        return digest.from_bytes(base64.b64decode(fields, validate=True))
    except (TypeError, ValueError, binascii.Error) as error:
        raise StateFormatError(f"changelog record {raw[:60]!r}: its event-id filter does not read: {error}") from error


def decode_state(raw: bytes) -> MemberState:
    """
    Return the state ``encode_state`` wrote.

    Older formats are migrated. Format 2 kept every event id: they become the digest they make
    (``digest.of``: the same ids up to 32, a filter beyond). A format-1 record (no version) also
    has each channel's deciding event become that channel's implicit invitation message, the
    closest the old record allows (it kept one decision per channel, not per message).

    Raises:
        StateFormatError: the record is in a format this worker does not know.

    """
    if raw[:1] == _COMPRESSED:
        raw = zlib.decompress(raw[1:])
    fields = orjson.loads(raw)
    version = fields[0] if isinstance(fields, list) and fields else None
    if version in (2, STATE_FORMAT) and len(fields) == 5:  # formats 2 and 3 differ in their last field
        _, member_id, campaign_id, messages, seen = fields
        joined = tuple(
            (key, message_state(channel_of(key), reminder, _undecision(channel_of(key), held), reached))
            for key, reminder, held, reached in messages
        )
        if version == 2 and not isinstance(seen, list):
            raise StateFormatError(f"changelog record {raw[:60]!r} (format 2) holds no list of event ids")
    elif isinstance(version, str) and len(fields) == 5:  # format 1 had five fields
        member_id, campaign_id, _, channels, seen = fields
        invitation = False
        joined = tuple(
            sorted(
                (message_key(channel, None, reminder=invitation), _migrated(channel, _undecision(channel, held)))
                for channel, held in channels
            )
        )
    else:
        raise StateFormatError(
            f"changelog record {raw[:60]!r} is in no state format this worker reads (formats 1 to {STATE_FORMAT}); "
            "a newer statusflow wrote it, or something else did: run that version, or rebuild the member "
            "states from the raw topics. Refusing rather than misreading it."
        )
    if not joined:
        raise StateFormatError(f"changelog record {raw[:60]!r} holds no message: a state has at least one")
    return from_messages(member_id, campaign_id, joined, _unseen(raw, seen))


def _decision(held: Decision) -> list[Any]:
    outcome = held.outcome
    return [outcome.code, outcome.final, outcome.channel_status, held.occurred_at, held.event_id]


def _undecision(channel: str, fields: list[Any]) -> Decision:
    code, final, channel_status, occurred_at, event_id = fields
    outcome = _OUTCOMES.get((code, final, channel_status, channel)) or _outcome((code, final, channel_status, channel))
    return decision(outcome, occurred_at, event_id)


def _migrated(channel: str, best: Decision) -> MessageState:
    # A format-1 channel decision as its channel's invitation message; the milestones the old
    # record can vouch for are those of that decision.
    invitation = False
    return message_state(channel, invitation, best, best.outcome.reached)
