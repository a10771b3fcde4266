"""
Message milestones: what the per-message metrics count, so ratios divide by messages, not events.

A message reaches each milestone at most once. Its best decision only rises in the message order
(``precedence.PRECEDENCE``), and each milestone is one contiguous band of that order: ``not_sent``
(nps.today decided not to send it: 4xxx, 2051), ``sent`` (handed over: everything from 2010 up,
failures included), ``failed`` (a provider bounce or failure: 5xxx) and ``complained`` (a spam
complaint). So 100 emails with 10 bounces count ``sent`` 100 and ``failed`` 10, whatever the
number of ``processed``, ``delivered`` and ``open`` events around them.
"""

from __future__ import annotations

from stream.domain.model import MemberState, MessageState, Outcome
from stream.domain.precedence import RANK, SENT_RANK
from stream.domain.vocab import COMPLAINT_EMAIL_STATUS

SENT = "sent"
FAILED = "failed"
COMPLAINED = "complained"
NOT_SENT = "not_sent"
MILESTONES: tuple[str, ...] = (SENT, FAILED, COMPLAINED, NOT_SENT)

_NOT_SENT_RANK = RANK[2051]  # the lowest "decided not to send"; below it, processing (0, 10)


def is_complaint(channel: str, outcome: Outcome) -> bool:
    """
    Return whether an outcome is a spam complaint (DCE ``COMPLAINED``, SendGrid ``spamreport``).

    Complaints share 3010 with unsubscribes; on email they alone show Email status 1 Sent
    (``vocab.COMPLAINT``), an unsubscribe shows 5 Clicked.
    """
    return channel == "email" and outcome.code == 3010 and outcome.channel_status == COMPLAINT_EMAIL_STATUS


def milestones(channel: str, outcome: Outcome) -> tuple[str, ...]:
    """Return the milestones a message whose best outcome is ``outcome`` has reached."""
    rank = RANK[outcome.code]
    if rank < _NOT_SENT_RANK:
        return ()
    if rank < SENT_RANK:
        return (NOT_SENT,)
    if 5000 <= outcome.code < 6000:  # the provider error ranges of seed 001
        return (SENT, FAILED)
    return (SENT, COMPLAINED) if is_complaint(channel, outcome) else (SENT,)


_REACHED: dict[tuple[str, Outcome | None, Outcome], tuple[str, ...]] = {}


def reached(channel: str, before: Outcome | None, after: Outcome) -> tuple[str, ...]:
    """Return the milestones a message reached when its best outcome went from ``before`` to ``after``."""
    key = (channel, before, after)
    found = _REACHED.get(key)
    if found is None:
        had = () if before is None else milestones(channel, before)
        found = _REACHED[key] = tuple(m for m in milestones(channel, after) if m not in had)
    return found


def message_of(state: MemberState | None, key: str) -> MessageState | None:
    """Return the state of message ``key`` of a member, or None if it has none."""
    if state is None:
        return None
    for held, message in state.messages:
        if held == key:
            return message
    return None
