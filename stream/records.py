"""
Internal wire formats: event packs on the re-keying topic, member states in the table changelog.

Compact JSON arrays rather than the public documents: the worker reads them back often, and
they must carry what the public state leaves out (each decision's event, the set of event ids).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from stream.domain.model import Decision, Event, MemberState, Outcome
from stream.domain.precedence import decision, strength

_new = tuple.__new__


def event_fields(event: Event) -> tuple[Any, ...]:
    """Return a classified event as a JSON-ready array (one entry of a pack on the re-keying topic)."""
    held = event.decision
    outcome = held.outcome
    return (
        event.member_id, event.campaign_id, event.source, event.channel,
        outcome.code, outcome.final, outcome.channel_status, held.earliness, held.event_id,
    )  # fmt: skip


def event_from_fields(fields: list[Any]) -> Event:
    """Return the event ``event_fields`` described."""
    member_id, campaign_id, source, channel, code, final, channel_status, earliness, event_id = fields
    # The strength is recomputed, not shipped: a pack written before a change of the rank table
    # must be judged by the table of the worker that reads it. tuple.__new__: this is per event.
    rank = strength(code, final)
    outcome = _new(Outcome, (code, final, channel_status, rank))
    return _new(Event, (member_id, campaign_id, source, channel, _new(Decision, (rank, earliness, event_id, outcome))))


def decode_pack(raw: bytes) -> list[Event]:
    """Return the events of one pack: a JSON array of ``event_fields`` lists."""
    return [event_from_fields(fields) for fields in orjson.loads(raw)]


# States beyond this size are stored zlib-compressed behind a one-byte frame: event ids (the
# bulk of a large state) compress about fivefold, and a JSON array never starts with this byte.
COMPRESS_FROM = 64 * 1024
_COMPRESSED = b"z"


def encode_state(state: MemberState) -> bytes:
    """Return a member state as bytes for the table changelog."""
    encoded = _encode_state(state)
    if len(encoded) > COMPRESS_FROM:
        return _COMPRESSED + zlib.compress(encoded, 1)
    return encoded


def _encode_state(state: MemberState) -> bytes:
    return orjson.dumps(
        [
            state.member_id,
            state.campaign_id,
            _decision(state.status),
            [[channel, _decision(held)] for channel, held in state.channels],
            sorted(state.event_ids),
        ]
    )


def decode_state(raw: bytes) -> MemberState:
    """Return the state ``encode_state`` wrote."""
    if raw[:1] == _COMPRESSED:
        raw = zlib.decompress(raw[1:])
    member_id, campaign_id, status, channels, event_ids = orjson.loads(raw)
    return MemberState(
        member_id,
        campaign_id,
        _undecision(status),
        tuple((channel, _undecision(held)) for channel, held in channels),
        frozenset(event_ids),
    )


def _decision(held: Decision) -> list[Any]:
    outcome = held.outcome
    return [outcome.code, outcome.final, outcome.channel_status, held.occurred_at, held.event_id]


def _undecision(fields: list[Any]) -> Decision:
    code, final, channel_status, occurred_at, event_id = fields
    return decision(Outcome(code, final, channel_status, strength(code, final)), occurred_at, event_id)
