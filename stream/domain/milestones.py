"""
Message milestones: what the per-message metrics count, so ratios divide by messages, not events.

A message reaches a milestone when any of its events reports it: ``sent`` (handed over: 2010 and
every later outcome, failures included), ``failed`` (a provider bounce or failure: 5xxx),
``complained`` (a spam complaint) or ``not_sent`` (nps.today decided not to send it: 4xxx, 2051).
Each outcome carries its milestones as bits (``Outcome.reached``); a message keeps their union
(``MessageState.reached``), a join like the rest of the state, so the counts do not depend on the
order events arrive in. 100 emails with 10 bounces count ``sent`` 100 and ``failed`` 10, whatever
the number of ``processed``, ``delivered`` and ``open`` events around them.
"""

from __future__ import annotations

from stream.domain.vocab import COMPLAINT_EMAIL_STATUS

SENT = "sent"
FAILED = "failed"
COMPLAINED = "complained"
NOT_SENT = "not_sent"
MILESTONES: tuple[str, ...] = (SENT, FAILED, COMPLAINED, NOT_SENT)
BITS: dict[str, int] = {name: 1 << index for index, name in enumerate(MILESTONES)}

_UNSUBSCRIBED = 3010
_REMINDER_FAILED = 2051


def is_complaint(channel: str, code: int, channel_status: int) -> bool:
    """
    Return whether an outcome is a spam complaint (DCE ``COMPLAINED``, SendGrid ``spamreport``).

    Complaints share 3010 with unsubscribes; on email they alone show Email status 1 Sent
    (``vocab.COMPLAINT``), an unsubscribe shows 5 Clicked.
    """
    return channel == "email" and code == _UNSUBSCRIBED and channel_status == COMPLAINT_EMAIL_STATUS


def bits(channel: str, code: int, channel_status: int) -> int:
    """Return the milestones an outcome reports, as bits of ``BITS``."""
    if code < 2000:  # processing: nothing has happened to the message yet
        return 0
    if 4000 <= code < 5000 or code == _REMINDER_FAILED:  # nps.today's own errors
        return BITS[NOT_SENT]
    found = BITS[SENT]
    if 5000 <= code < 6000:  # the provider error ranges of seed 001
        found |= BITS[FAILED]
    if is_complaint(channel, code, channel_status):
        found |= BITS[COMPLAINED]
    return found


_NAMES: dict[int, tuple[str, ...]] = {
    mask: tuple(name for name in MILESTONES if mask & BITS[name]) for mask in range(1 << len(MILESTONES))
}


def names(mask: int) -> tuple[str, ...]:
    """Return the milestones set in ``mask``."""
    return _NAMES[mask]
