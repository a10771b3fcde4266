"""
Precedence: which outcome decides a member's status, as a join over the set of its events.

Two levels (README, "Precedence"):

1. **Per message.** A message's events are joined by ``PRECEDENCE``: within one message a bounce
   beats "delivered" (an asynchronous bounce follows the delivery report), and a refusal (4xxx)
   beats a mere handover but never a delivery.
2. **Per member.** Each message then contributes its outcome, a reminder's seen as a reminder's
   (``REMINDER_CODE``: a failed or cancelled reminder is 2051), and the member's status and each
   channel's status are the strongest contribution by ``MEMBER_PRECEDENCE``: a delivery on any
   message beats failures of the others, and nps.today's decisions not to send (4xxx) rank below
   any sign that something was sent.

``resolve(current, event)`` is the only way state changes. Each order is total (rank, then final
over temporary, then the earlier event, then the larger event id), a message's reminder flag and
its milestones are an "or", and the digest of event ids is a function of their set; so the state
is commutative, associative and idempotent in its events: arrival order, duplicates, replays and
batching cannot change it. The join needs no ids for that: they only tell a duplicate from a new
event and count the events (``digest``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from stream.domain import digest
from stream.domain.digest import EXACT
from stream.domain.model import Decision, Event, MemberState, MessageState, Outcome

# nps.today's decisions not to send (also a provider's refusal, e.g. SendGrid's drop of a suppressed
# address), weakest first: unknown errors below specific ones.
_REFUSALS = (4000, 4003, 4007, 4002, 4008, 4001, 4006)
# The address is invalid: nps.today's own check, or a provider reporting it the way nps.today would.
_INVALID_ADDRESS = (4004, 4005)
_NOT_SENT = (*_REFUSALS[:-1], *_INVALID_ADDRESS, _REFUSALS[-1])  # the member order's, as before
# Provider failures, weakest first: unknown below specific, failed below bounced.
_FAILURES = (5000, 5100, 5200, 5001, 5101, 5201, 5202)
# What the respondent did, weakest first. Answers are never undone by anything about a message.
_RESPONDENT = (
    2030,  # Opened: engagement proves delivery, so it beats any delivery failure
    2040,  # Clicked
    3010,  # Unsubscribed: the respondent acted on it, negatively
    2510,  # Rated
    2520,  # Commented
    2600,  # Completed
    2701,  # ScoreChangedInternally: edits happen to answered members, after the answer
    2702,  # CommentChangedInternally
)

# Within one message, ascending strength; every temporary outcome ranks below every final one.
PRECEDENCE: tuple[int, ...] = (
    0,  # added
    10,  # scheduled
    2010,  # sent: handed over, more news is expected
    2050,  # Reminded: a reminder handed over
    # A refusal after the handover is news (SendGrid: processed, then dropped), but it never undoes
    # a delivery: after one it is a refused resubmission (imgw error-id-not-unique, a Duplicated resend).
    2051,  # ReminderFailed as nps.today reports it: the reminder was not sent
    *_REFUSALS,
    2020,  # Delivered: the provider's word on the message
    *_FAILURES,  # beat "delivered": a bounce can follow the delivery report
    *_INVALID_ADDRESS,  # an invalid address is a bounce too, the most specific one
    *_RESPONDENT,
)

# Across a member's messages, ascending strength. A delivery on any message or channel outranks
# the failures of the others; a reminder's outcome (2050/2051) never outranks the invitation's.
MEMBER_PRECEDENCE: tuple[int, ...] = (
    0,
    10,
    *_NOT_SENT,  # nps.today's decisions decide only members nothing was ever sent to
    2010,
    2050,
    2051,  # a reminder failed or was cancelled
    *_FAILURES,
    2020,
    *_RESPONDENT,
)

# What a reminder's message outcome says about the member: it was reminded (2050), or the
# reminder failed or was cancelled (2051). The respondent's own actions keep their code.
REMINDER_CODE: dict[int, int] = {
    2010: 2050,
    2020: 2050,
    **dict.fromkeys((2051, *_REFUSALS, *_INVALID_ADDRESS, *_FAILURES), 2051),
}

_new_tuple = tuple.__new__

RANK: dict[int, int] = {code: rank for rank, code in enumerate(PRECEDENCE)}
MEMBER_RANK: dict[int, int] = {code: rank for rank, code in enumerate(MEMBER_PRECEDENCE)}


def strength(code: int, final: bool) -> int:
    """Return an outcome's place in the message precedence order: by rank, then final over temporary."""
    return RANK[code] * 2 + final


def member_strength(code: int, final: bool) -> int:
    """Return an outcome's place in the member precedence order."""
    return MEMBER_RANK[code] * 2 + final


def decision(outcome: Outcome, occurred_at: int, event_id: str) -> Decision:
    """Return the Decision an outcome makes, for an event at ``occurred_at`` (epoch ms)."""
    # tuple.__new__ skips NamedTuple's Python-level __new__: a third of the cost, same object.
    return _new_tuple(Decision, (outcome.strength, -occurred_at, event_id, outcome))


def message_key(channel: str, message_id: str | None, *, reminder: bool) -> str:
    """
    Return the key of the message an event reports on.

    Message ids are scoped by channel (a fallback on another channel is another message). An
    event without one belongs to its channel's implicit invitation or, for a reminder, the
    channel's implicit reminder message: then all of a channel's invitation events are one message.
    """
    if message_id is not None:
        return f"{channel}#{message_id}"
    return f"{channel}~reminder" if reminder else channel


def outcome(code: int, final: bool, channel_status: int, reached: int) -> Outcome:
    """Return the Outcome of an AdditionStatus, with its places in both precedence orders."""
    return Outcome(code, final, channel_status, strength(code, final), reached, member_strength(code, final))


# A message outcome -> what it says about the member if the message is a reminder.
_AS_REMINDER: dict[Outcome, Outcome] = {}


def _as_reminder(held: Outcome) -> Outcome:
    code, final = held.code, held.final
    if code in REMINDER_CODE:
        # A failure or a delivery report settles the reminder: final. Its channel status stays.
        code = REMINDER_CODE[code]
        final = final or code == 2051 or held.code == 2020  # 2020: Delivered
    found = _AS_REMINDER[held] = outcome(code, final, held.channel_status, held.reached)
    return found


def message_state(channel: str, reminder: bool, best: Decision, reached: int) -> MessageState:
    """Return a message's state from its strongest decision, with what it contributes to the member."""
    held = best.outcome
    if reminder:
        held = _AS_REMINDER.get(held) or _as_reminder(held)
    contribution = _new_tuple(Decision, (held.member_strength, best.earliness, best.event_id, held))
    return _new_tuple(MessageState, (channel, reminder, best, contribution, reached))


def resolve(current: MemberState | None, event: Event) -> MemberState:
    """
    Apply one event to a member's state.

    The event's decision is always joined; the digest of ids only says whether the event may have
    been seen (``digest``). So a digest's false positive can never drop an event's effect: a new
    event that changes the state is applied, whatever the digest says.

    Args:
        current: the state so far, or None for a member not seen before.
        event: a classified event of this member.

    Returns:
        The new state; ``current`` itself (the same object) when the event was already applied, or
        when the digest takes it for seen (a past-``digest.EXACT`` member, with probability
        ``digest.false_positive_rate``) and it changes nothing.

    """
    new = event.decision
    key = event.message
    if current is None:
        message = message_state(event.channel, event.reminder, new, new.outcome.reached)
        status = message.contribution
        return _new_tuple(
            MemberState,
            (
                event.member_id,
                event.campaign_id,
                status,
                ((event.channel, status),),
                frozenset((new.event_id,)),
                ((key, message),),
            ),
        )
    held_ids = current.seen
    if isinstance(held_ids, frozenset):
        if new.event_id in held_ids:  # exactly seen: joined before, so the join would change nothing
            return current
        seen = held_ids | {new.event_id} if len(held_ids) < EXACT else digest.add(held_ids, new.event_id)
    else:
        seen = digest.add(held_ids, new.event_id)
    messages = current.messages
    status, channels = current.status, current.channels
    if len(messages) == 1 and messages[0][0] == key:  # the common case: one message per member
        held = messages[0][1]
        reminder = held.reminder or event.reminder
        reached = held.reached | new.outcome.reached
        if new > held.best or reminder is not held.reminder or reached != held.reached:
            message = message_state(held.channel, reminder, max(held.best, new), reached)
            status = message.contribution
            channels = ((held.channel, status),)
            messages = ((key, message),)
    else:
        merged = dict(messages)
        found = merged.get(key)
        if found is None:
            merged[key] = message_state(event.channel, event.reminder, new, new.outcome.reached)
        elif (
            new > found.best
            or (event.reminder and not found.reminder)
            or (new.outcome.reached | found.reached) != found.reached
        ):
            merged[key] = message_state(
                found.channel,
                found.reminder or event.reminder,
                max(found.best, new),
                found.reached | new.outcome.reached,
            )
        if merged[key] is not found:
            messages = tuple(sorted(merged.items()))
            status, channels = _summary(messages)
    campaign_id = (
        current.campaign_id
        if current.campaign_id == event.campaign_id
        else _campaign(current.campaign_id, event.campaign_id)
    )
    if seen is held_ids and messages is current.messages and campaign_id == current.campaign_id:
        return current  # the filter holds it (a replay, or a false positive) and it changes nothing
    return _new_tuple(MemberState, (current.member_id, campaign_id, status, channels, seen, messages))


def resolve_members(events: Iterable[Event]) -> dict[str, MemberState]:
    """
    Return the state of every member after all of ``events``, in one pass.

    Equal to folding ``resolve`` over each member's events (the join makes the order irrelevant),
    but it builds one state per member instead of one per event: what an offline run over a
    whole file wants. See ``join_members`` for the count of duplicates.
    """
    return join_members(events)[0]


def join_members(events: Iterable[Event]) -> tuple[dict[str, MemberState], int]:
    """
    Return the state of every member after all of ``events``, and how many of them were duplicates.

    Per member it keeps the campaign, the keys of its reminder messages, per message the best
    decision and the milestones reached, and the digest of event ids: a set while exact, a
    ``_Filter`` beyond. An event counts as a duplicate exactly when folding ``resolve`` over the
    same events in the same order would return the state unchanged.
    """
    # member -> [[campaign_id, reminder message keys or None], message -> [best, reached, channel], ids]
    joins: dict[str, list[Any]] = {}
    get = joins.get
    duplicates = 0
    # Unpacked in the loop header: cheaper than seven attribute reads per event.
    for member_id, campaign_id, _, channel, new, key, reminder in events:
        held = get(member_id)
        if held is None:
            joins[member_id] = [
                [campaign_id, {key} if reminder else None],
                {key: [new, new.outcome.reached, channel]},
                {new.event_id},
            ]
            continue
        extra, messages, event_ids = held
        if new.event_id in event_ids:
            if event_ids.__class__ is set or not _would_change(held, new, key, reminder, campaign_id):
                duplicates += 1
                continue
        else:
            event_ids.add(new.event_id)
            if len(event_ids) > EXACT:
                held[2] = _Filter(event_ids)
        message = messages.get(key)
        if message is None:
            messages[key] = [new, new.outcome.reached, channel]
        else:
            if new > message[0]:  # noqa: PLR1730 - max() is a call, and this runs per event
                message[0] = new
            message[1] |= new.outcome.reached
        if reminder:
            extra[1] = extra[1] or set()  # never empty once made
            extra[1].add(key)
        if campaign_id != extra[0]:
            extra[0] = _campaign(extra[0], campaign_id)
    states = {
        member_id: _state(member_id, extra[0], messages, extra[1] or (), event_ids)
        for member_id, (extra, messages, event_ids) in joins.items()
    }
    return states, duplicates


class _Filter:
    """``join_members``' mutable stand-in for a set of ids past ``digest.EXACT``: a Bloom filter."""

    __slots__ = ("bits",)

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.bits = digest.bloom(event_ids)

    def __contains__(self, event_id: object) -> bool:
        more = digest.bits(str(event_id))
        return self.bits & more == more

    def __len__(self) -> int:
        return 0  # never "past EXACT" again

    def add(self, event_id: str) -> None:
        self.bits |= digest.bits(event_id)


def _would_change(held: list[Any], new: Decision, key: str, reminder: bool, campaign_id: str | None) -> bool:
    # What resolve checks after joining: a new message, a stronger decision, a new milestone, a
    # reminder flag or another campaign. Only asked for a filter's "seen", which may be a new event.
    extra, messages, _ = held
    message = messages.get(key)
    return (
        message is None
        or new > message[0]
        or (new.outcome.reached | message[1]) != message[1]
        or (reminder and (extra[1] is None or key not in extra[1]))
        or (campaign_id != extra[0] and _campaign(extra[0], campaign_id) != extra[0])
    )


def _state(
    member_id: str,
    campaign_id: str | None,
    joined: dict[str, list[Any]],
    reminders: Collection[str],
    event_ids: set[str] | _Filter,
) -> MemberState:
    seen: digest.Seen = event_ids.bits if isinstance(event_ids, _Filter) else frozenset(event_ids)
    if len(joined) == 1 and not reminders:  # the common case: one invitation message
        ((key, (best, reached, channel)),) = joined.items()
        held = best.outcome
        status = _new_tuple(Decision, (held.member_strength, best.earliness, best.event_id, held))
        message = _new_tuple(MessageState, (channel, False, best, status, reached))
        return _new_tuple(MemberState, (member_id, campaign_id, status, ((channel, status),), seen, ((key, message),)))
    messages = [
        (key, message_state(channel, key in reminders, best, reached))
        for key, (best, reached, channel) in joined.items()
    ]
    messages.sort()
    return from_messages(member_id, campaign_id, tuple(messages), seen)


def from_messages(
    member_id: str,
    campaign_id: str | None,
    messages: tuple[tuple[str, MessageState], ...],
    seen: digest.Seen,
) -> MemberState:
    """Return the member state its messages make (``messages`` sorted by key, at least one)."""
    status, channels = _summary(messages)
    return _new_tuple(MemberState, (member_id, campaign_id, status, channels, seen, messages))


def message_of(state: MemberState | None, key: str) -> MessageState | None:
    """Return the state of message ``key`` of a member, or None if it has none."""
    if state is not None:
        for held, message in state.messages:
            if held == key:
                return message
    return None


def channel_of(key: str) -> str:
    """Return the channel of a message key (``message_key``)."""
    return key.partition("#")[0].partition("~")[0]


def merge(a: MemberState, b: MemberState) -> MemberState:
    """Join two states of one member, as if all their events had been resolved together."""
    merged = dict(a.messages)
    for key, theirs in b.messages:
        ours = merged.get(key)
        merged[key] = (
            theirs
            if ours is None or ours == theirs
            else message_state(
                ours.channel,
                ours.reminder or theirs.reminder,
                max(ours.best, theirs.best),
                ours.reached | theirs.reached,
            )
        )
    return from_messages(
        a.member_id,
        _campaign(a.campaign_id, b.campaign_id),
        tuple(sorted(merged.items())),
        digest.union(a.seen, b.seen),
    )


def _summary(
    messages: tuple[tuple[str, MessageState], ...],
) -> tuple[Decision, tuple[tuple[str, Decision], ...]]:
    channels: dict[str, Decision] = {}
    for _, message in messages:
        contribution = message.contribution
        held = channels.get(message.channel)
        if held is None or contribution > held:
            channels[message.channel] = contribution
    return max(channels.values()), tuple(sorted(channels.items()))


def _campaign(a: str | None, b: str | None) -> str | None:
    # A member belongs to one campaign; should sources disagree, pick one deterministically.
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)
