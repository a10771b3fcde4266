"""
Plain value objects of the resolution core: what an event says and what a member's state is.

They are NamedTuples rather than frozen dataclasses: just as immutable, and several times cheaper
to build and compare, which matters at a million events a run (see README, "Performance").
"""

from __future__ import annotations

from typing import NamedTuple


class Outcome(NamedTuple):
    """
    What one provider status means in the nps.today model.

    Attributes:
        code: the AdditionStatus code.
        final: True for a permanent outcome, False for a temporary / in-transit one.
        channel_status: the status code in the channel's own list (SMS status, Email status, ...).
        strength: the outcome's place in the precedence order (``precedence.strength``).

    """

    code: int
    final: bool
    channel_status: int
    strength: int


class Decision(NamedTuple):
    """
    The outcome that decides a status, with the event that brought it.

    Field order is the precedence order: comparing two Decisions as tuples picks the winner
    (stronger outcome, then the earlier event, then the larger event id).
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
    """A validated, classified event: the only input the precedence join accepts."""

    member_id: str
    campaign_id: str | None
    source: str
    channel: str
    decision: Decision

    @property
    def event_id(self) -> str:
        """The dedupe key: ``source:event_id``."""
        return self.decision.event_id


class MemberState(NamedTuple):
    """
    The resolved state of one CampaignMember.

    ``channels`` is sorted by channel name and ``event_ids`` is a set, so two states built from
    the same events compare equal whatever order the events came in.
    """

    member_id: str
    campaign_id: str | None
    status: Decision
    channels: tuple[tuple[str, Decision], ...]
    event_ids: frozenset[str]

    @property
    def final(self) -> bool:
        """Whether the deciding outcome is permanent: no temporary outcome can change it."""
        return self.status.outcome.final
