"""
Precedence: which outcome decides a member's status, as a join over the set of its events.

``resolve(current, event)`` is the only way state changes. The decision between two outcomes is a
total order (rank, then final over temporary, then the earlier event, then the larger event id),
and the event ids are a set; so the state is commutative, associative and idempotent in its
events: arrival order, duplicates, replays and batching cannot change it. README.md explains each
rank ("Precedence").
"""

from __future__ import annotations

from collections.abc import Iterable

from stream.domain.model import Decision, Event, MemberState, Outcome

# Ascending strength. Every temporary outcome any vocabulary yields ranks below every final one.
PRECEDENCE: tuple[int, ...] = (
    # Processing and handover: more news is expected.
    0,  # added
    10,  # scheduled
    2010,  # sent
    2050,  # Reminded: another handover, no proof of delivery
    # Delivery: the provider's word on the message.
    2051,  # ReminderFailed: the reminder failed, not the survey
    2020,  # Delivered
    # Failures beat a delivery report: a bounce can follow "delivered" (async bounce).
    # Unknown errors rank below specific ones; nps.today's own decisions rank last.
    5000,
    5100,
    5200,
    4000,
    5001,
    5101,
    5201,
    5202,
    4003,
    4007,
    4002,
    4008,
    4001,
    4004,
    4005,
    4006,
    # Engagement proves delivery, so it beats any delivery failure.
    2030,  # Opened
    2040,  # Clicked
    3010,  # Unsubscribed: the respondent acted on it, negatively
    # Answers are never undone by anything that reports on the message.
    2510,  # Rated
    2520,  # Commented
    2600,  # Completed
    # Edits in the dashboard only happen to answered members, after the answer.
    2701,  # ScoreChangedInternally
    2702,  # CommentChangedInternally
)

_new_tuple = tuple.__new__

RANK: dict[int, int] = {code: rank for rank, code in enumerate(PRECEDENCE)}


def strength(code: int, final: bool) -> int:
    """Return an outcome's place in the precedence order: by rank, then final over temporary."""
    return RANK[code] * 2 + final


def decision(outcome: Outcome, occurred_at: int, event_id: str) -> Decision:
    """Return the Decision an outcome makes, for an event at ``occurred_at`` (epoch ms)."""
    # tuple.__new__ skips NamedTuple's Python-level __new__: a third of the cost, same object.
    return _new_tuple(Decision, (outcome.strength, -occurred_at, event_id, outcome))


def resolve(current: MemberState | None, event: Event) -> MemberState:
    """
    Apply one event to a member's state.

    Args:
        current: the state so far, or None for a member not seen before.
        event: a classified event of this member.

    Returns:
        The new state; ``current`` itself (the same object) when the event was already applied.

    """
    new = event.decision
    if current is None:
        channels: tuple[tuple[str, Decision], ...] = ((event.channel, new),)
        return _new_tuple(MemberState, (event.member_id, event.campaign_id, new, channels, frozenset((new.event_id,))))
    if new.event_id in current.event_ids:
        return current
    held = current.channels
    if len(held) == 1 and held[0][0] == event.channel:  # the common case: one channel per member
        channels = ((event.channel, max(held[0][1], new)),)
    else:
        channels = _merge_channels(held, ((event.channel, new),))
    campaign_id = (
        current.campaign_id
        if current.campaign_id == event.campaign_id
        else _campaign(current.campaign_id, event.campaign_id)
    )
    return _new_tuple(
        MemberState,
        (current.member_id, campaign_id, max(current.status, new), channels, current.event_ids | {new.event_id}),
    )


def resolve_members(events: Iterable[Event]) -> dict[str, MemberState]:
    """
    Return the state of every member after all of ``events``, in one pass.

    Equal to folding ``resolve`` over each member's events (the join makes the order irrelevant),
    but it builds one state per member instead of one per event: what an offline run over a
    whole file wants. Per member it keeps the campaign, the best decision per channel and the
    event ids; an id's first arrival counts, as in ``resolve``.
    """
    joins: dict[str, tuple[list[str | None], dict[str, Decision], set[str]]] = {}
    get = joins.get
    for event in events:
        new = event.decision
        held = get(event.member_id)
        if held is None:
            joins[event.member_id] = ([event.campaign_id], {event.channel: new}, {new.event_id})
            continue
        campaign, channels, event_ids = held
        if new.event_id in event_ids:
            continue
        event_ids.add(new.event_id)
        best = channels.get(event.channel)
        if best is None or new > best:
            channels[event.channel] = new
        if event.campaign_id != campaign[0]:
            campaign[0] = _campaign(campaign[0], event.campaign_id)
    return {
        member_id: _new_tuple(
            MemberState,
            (
                member_id,
                campaign[0],
                max(channels.values()),
                tuple(sorted(channels.items())) if len(channels) > 1 else tuple(channels.items()),
                frozenset(event_ids),
            ),
        )
        for member_id, (campaign, channels, event_ids) in joins.items()
    }


def merge(a: MemberState, b: MemberState) -> MemberState:
    """Join two states of one member, as if all their events had been resolved together."""
    return MemberState(
        a.member_id,
        _campaign(a.campaign_id, b.campaign_id),
        max(a.status, b.status),
        _merge_channels(a.channels, b.channels),
        a.event_ids | b.event_ids,
    )


def _campaign(a: str | None, b: str | None) -> str | None:
    # A member belongs to one campaign; should sources disagree, pick one deterministically.
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def _merge_channels(
    a: tuple[tuple[str, Decision], ...], b: tuple[tuple[str, Decision], ...]
) -> tuple[tuple[str, Decision], ...]:
    merged = dict(a)
    for channel, held in b:
        other = merged.get(channel)
        merged[channel] = held if other is None else max(held, other)
    return tuple(sorted(merged.items())) if len(merged) > 1 else tuple(merged.items())
