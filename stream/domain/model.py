"""
Plain value objects of the resolution core: what an event says and what a member's state is.

They are NamedTuples rather than frozen dataclasses: just as immutable, and several times cheaper
to build and compare, which matters at a million events a run (see README, "Performance").
"""

from __future__ import annotations

from typing import NamedTuple

from stream.domain import digest


class Outcome(NamedTuple):
    """
    What one provider status means in the nps.today model.

    Attributes:
        code: the AdditionStatus code.
        final: True for a permanent outcome, False for a temporary / in-transit one.
        channel_status: the status code in the channel's own list (SMS status, Email status, ...).
        strength: the outcome's place in the message precedence order (``precedence.strength``).
        reached: the message milestones it reports, as bits (``milestones.bits``).
        member_strength: its place in the member precedence order, as an invitation's outcome
            (``precedence.member_strength``): carried here so the join looks nothing up.

    """

    code: int
    final: bool
    channel_status: int
    strength: int
    reached: int
    member_strength: int


class Decision(NamedTuple):
    """
    The outcome that decides a status, with the event that brought it.

    Field order is the precedence order: comparing two Decisions as tuples picks the winner
    (stronger outcome, then the earlier event, then the larger event id). ``strength`` is the
    message order's for an event's decision and a message's best one, the member order's for a
    message's contribution and a member's status (``precedence``).
    """

    strength: int
    earliness: int  # minus the event time in epoch ms, so that earlier compares greater
    event_id: str
    outcome: Outcome

    @property
    def occurred_at(self) -> int:
        """The deciding event's time, epoch milliseconds UTC."""
        return -self.earliness


class Event(NamedTuple):
    """
    A validated, classified event: the only input the precedence join accepts.

    Attributes:
        message: the key of the message the event reports on (``message_key``): channel and
            ``message_id``, or for an event without one, its channel's implicit invitation or
            reminder message.
        reminder: the event says its message is a reminder (``message_type`` reminder).

    """

    member_id: str
    campaign_id: str | None
    source: str
    channel: str
    decision: Decision
    message: str
    reminder: bool

    @property
    def event_id(self) -> str:
        """The dedupe key: ``source:event_id``."""
        return self.decision.event_id


class MessageState(NamedTuple):
    """
    What happened to one message (an invitation or a reminder on one channel).

    Attributes:
        channel: the channel the message went over.
        reminder: any of its events said it is a reminder.
        best: the strongest of its events' decisions (message precedence: a bounce beats "delivered").
        contribution: what the message says about the member (member precedence); for a
            reminder, its outcome seen as a reminder's (2050 / 2051).
        reached: the milestones any of its events reported (the union of their bits).

    """

    channel: str
    reminder: bool
    best: Decision
    contribution: Decision
    reached: int


class MemberState(NamedTuple):
    """
    The resolved state of one CampaignMember.

    ``status`` and ``channels`` are derived from ``messages``: the member-precedence maximum of
    the messages' contributions, over all messages and per channel. ``channels`` and
    ``messages`` are sorted by key and ``seen`` is a function of the set of event ids (a
    ``digest``: the ids themselves up to 32, a fixed-size filter beyond), so two states built from
    the same events compare equal whatever order the events came in, and a state's size does not
    grow with its events.
    """

    member_id: str
    campaign_id: str | None
    status: Decision
    channels: tuple[tuple[str, Decision], ...]
    seen: digest.Seen
    messages: tuple[tuple[str, MessageState], ...]

    @property
    def final(self) -> bool:
        """Whether the deciding outcome is permanent: no temporary outcome can change it."""
        return self.status.outcome.final

    @property
    def events(self) -> int:
        """The number of distinct events applied: exact up to ``digest.EXACT``, estimated beyond."""
        return digest.count(self.seen)
