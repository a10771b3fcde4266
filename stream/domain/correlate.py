"""
Finding a status's member through its dispatch record: the join on (provider, message id).

A provider status that names no member of ours (a Twilio callback, an SES event without tags) still
names the provider's message id. The sending system publishes a *dispatch record* when the provider
accepts a message (``schemas/dispatch.v1.json``): provider, message id, member. Statuses and
dispatches meet here in any order:

- a status whose dispatch is known is *released* at once, as an event of the dispatch's member;
- a status that comes first is *held*; its dispatch, when it comes, releases it;
- a status still held when the event-time watermark (the latest ``occurred_at`` seen in this
  correlator's scope, statuses and dispatches alike) passes its own time plus ``wait`` is
  *unmatched*: the caller dead-letters it (reason ``unmatched_message``);
- a dispatch is kept until the watermark passes ``retention`` after the latest event time it saw
  (its own, or its latest status's): late opens and clicks still find it, and the hold stays bounded.

Event time, not the clock: a replay or a backfill of last month's records joins exactly as the live
stream did, and a stalled input never expires anything. The correlator is pure and synchronous; the
worker keeps one per partition of its correlation topic and persists the slots it reports changed.
Nothing here imports anything outside the standard library.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

P = TypeVar("P")

HOUR_MS = 3_600_000
DEFAULT_WAIT_MS = 24 * HOUR_MS
DEFAULT_RETENTION_MS = 7 * 24 * HOUR_MS
# A message with more statuses held than this is an abuse or a bug upstream; the slot (one changelog
# record) must stay small. Beyond it the correlator refuses to hold more (the caller dead-letters).
MAX_HELD_PER_MESSAGE = 256


@dataclass(frozen=True, slots=True)
class Dispatch:
    """
    One dispatch record: the provider accepted ``message_id`` for ``member_id``.

    ``message_id`` is the correlation id (``provider`` module's ``dispatch_message_id``): for SendGrid
    the ``X-Message-Id``, which is the prefix of its events' ``sg_message_id``.
    """

    provider: str
    message_id: str
    member_id: str
    occurred_at: int  # epoch ms
    campaign_id: str | None = None
    message_type: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Held(Generic[P]):
    """A status waiting for its dispatch: its key, its identity within the key, its time, and what to release."""

    provider: str
    message_id: str
    event_id: str
    occurred_at: int  # epoch ms
    payload: P


@dataclass(frozen=True, slots=True)
class Slot(Generic[P]):
    """Everything known about one (provider, message id): its dispatch, the statuses waiting, the latest time seen."""

    dispatch: Dispatch | None = None
    held: tuple[Held[P], ...] = ()
    last_seen: int = 0

    @property
    def empty(self) -> bool:
        """Whether nothing is left to keep."""
        return self.dispatch is None and not self.held


@dataclass(frozen=True, slots=True)
class Released(Generic[P]):
    """A status joined with its dispatch: the caller turns it into an event of ``dispatch.member_id``."""

    dispatch: Dispatch
    status: Held[P]


Key = tuple[str, str]


def key_of(provider: str, message_id: str) -> Key:
    """Return the join key."""
    return (provider, message_id)


@dataclass
class Correlator(Generic[P]):
    """
    The join of one scope (the whole input offline; one partition of the correlation topic live).

    ``slots`` may be pre-filled (restored from a changelog); call ``reindex`` after filling it.
    ``changed`` collects the keys whose slot changed (or went: absent from ``slots``) since the
    caller last cleared it, so the caller persists exactly those.
    """

    wait_ms: int = DEFAULT_WAIT_MS
    retention_ms: int = DEFAULT_RETENTION_MS
    slots: dict[Key, Slot[P]] = field(default_factory=dict)
    watermark: int = 0
    changed: set[Key] = field(default_factory=set)
    # Statuses waiting, per provider: kept as slots change (a gauge read after every batch must not
    # walk a million kept dispatches).
    held_by_provider: dict[str, int] = field(default_factory=dict)
    _deadlines: list[tuple[int, Key]] = field(default_factory=list)
    # Each key's earliest deadline in the heap: a slot updated per status (its dispatch's retention
    # moving on) files a new deadline only when it is earlier, so the heap holds about one entry per
    # slot, not one per update over the retention.
    _filed: dict[Key, int] = field(default_factory=dict)

    def reindex(self) -> None:
        """Rebuild the deadlines (and a watermark no later than the truth) from ``slots``."""
        self._filed = {key: self._deadline(slot) for key, slot in self.slots.items()}
        self._deadlines = [(due, key) for key, due in self._filed.items()]
        heapq.heapify(self._deadlines)
        self.held_by_provider = {}
        for (provider, _), slot in self.slots.items():
            if slot.held:
                self.held_by_provider[provider] = self.held_by_provider.get(provider, 0) + len(slot.held)
        seen = [slot.last_seen for slot in self.slots.values()]
        # The true watermark was at least the latest time a kept slot saw: never later, so a restart
        # can only delay an expiry, never bring one forward.
        self.watermark = max([self.watermark, *seen])

    def advance(self, occurred_at: int) -> None:
        """Move the watermark to ``occurred_at`` if it is later."""
        self.watermark = max(self.watermark, occurred_at)

    def status(self, held: Held[P]) -> Released[P] | None:
        """
        Take a status: released at once if its dispatch is known, else held (None).

        A status held twice (a redelivery: same key and event id) is held once.

        Raises:
            OverflowError: the message already holds ``MAX_HELD_PER_MESSAGE`` statuses.

        """
        key = (held.provider, held.message_id)
        slot = self.slots.get(key) or Slot()
        last_seen = max(slot.last_seen, held.occurred_at)
        if slot.dispatch is not None:
            if last_seen != slot.last_seen:  # a late status keeps its dispatch for another retention
                self._put(key, replace(slot, last_seen=last_seen))
            return Released(slot.dispatch, held)
        if any(waiting.event_id == held.event_id for waiting in slot.held):
            return None
        if len(slot.held) >= MAX_HELD_PER_MESSAGE:
            raise OverflowError(
                f"{held.provider} message {held.message_id!r} already has {MAX_HELD_PER_MESSAGE} statuses "
                "waiting for its dispatch record"
            )
        self._put(key, Slot(None, (*slot.held, held), last_seen))
        return None

    def dispatch(self, dispatch: Dispatch) -> tuple[list[Released[P]], Dispatch | None]:
        """
        Take a dispatch record: release the statuses waiting for it.

        Returns:
            The released statuses, and the dispatch already kept for this message when it names
            another member (a conflict: the first one stands, the caller reports the second).
            A repeated dispatch (a redelivery) releases nothing and is no conflict.

        """
        key = (dispatch.provider, dispatch.message_id)
        slot = self.slots.get(key) or Slot()
        last_seen = max(slot.last_seen, dispatch.occurred_at)
        kept = slot.dispatch
        if kept is not None:
            if last_seen != slot.last_seen:
                self._put(key, replace(slot, last_seen=last_seen))
            same = (kept.member_id, kept.campaign_id, kept.message_type) == (
                dispatch.member_id,
                dispatch.campaign_id,
                dispatch.message_type,
            )
            return [], None if same else kept
        self._put(key, Slot(dispatch, (), last_seen))
        return [Released(dispatch, waiting) for waiting in slot.held], None

    def expire(self) -> tuple[list[Held[P]], list[Key]]:
        """
        Let go of what the watermark has passed.

        Returns:
            The statuses that waited ``wait`` past their own time without a dispatch (unmatched),
            and the keys forgotten altogether.

        """
        unmatched: list[Held[P]] = []
        forgotten: list[Key] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < self.watermark:
            due, key = heapq.heappop(deadlines)
            if self._filed.get(key) != due:  # superseded by an earlier one, already handled
                continue
            del self._filed[key]
            slot = self.slots.get(key)
            if slot is None:
                continue
            waiting = tuple(h for h in slot.held if h.occurred_at + self.wait_ms >= self.watermark)
            unmatched += [h for h in slot.held if h.occurred_at + self.wait_ms < self.watermark]
            dispatch = slot.dispatch
            if dispatch is not None and slot.last_seen + self.retention_ms < self.watermark:
                dispatch = None
            kept = Slot(dispatch, waiting, slot.last_seen)
            if kept.empty:
                self._count(key, slot, None)
                del self.slots[key]
                self.changed.add(key)
                forgotten.append(key)
            elif kept != slot:
                self._put(key, kept)
            else:  # an outdated deadline (the slot moved on since): file the current one
                self._file(key, self._deadline(slot))
        return unmatched, forgotten

    def drop_held(self, key: Key) -> list[Held[P]]:
        """Let go of a message's waiting statuses (the caller dead-letters them); its dispatch stays."""
        slot = self.slots.get(key)
        if slot is None or not slot.held:
            return []
        kept: Slot[P] = Slot(slot.dispatch, (), slot.last_seen)
        if kept.empty:
            self._count(key, slot, None)
            del self.slots[key]
            self.changed.add(key)
        else:
            self._put(key, kept)
        return list(slot.held)

    def flush(self) -> list[Held[P]]:
        """End of input (offline): every status still waiting is unmatched."""
        unmatched = [h for slot in self.slots.values() for h in slot.held]
        for key, slot in list(self.slots.items()):
            if slot.held:
                self._put(key, Slot(slot.dispatch, (), slot.last_seen))
        return unmatched

    def _put(self, key: Key, slot: Slot[P]) -> None:
        self._count(key, self.slots.get(key), slot)
        self.slots[key] = slot
        self.changed.add(key)
        self._file(key, self._deadline(slot))

    def _file(self, key: Key, due: int) -> None:
        filed = self._filed.get(key)
        if filed is None or due < filed:
            self._filed[key] = due
            heapq.heappush(self._deadlines, (due, key))

    def _count(self, key: Key, before: Slot[P] | None, after: Slot[P] | None) -> None:
        delta = (len(after.held) if after else 0) - (len(before.held) if before else 0)
        if delta:
            provider = key[0]
            self.held_by_provider[provider] = self.held_by_provider.get(provider, 0) + delta

    def _deadline(self, slot: Slot[P]) -> int:
        # The earliest watermark at which something in the slot may go.
        times = [held.occurred_at + self.wait_ms for held in slot.held]
        if slot.dispatch is not None:
            times.append(slot.last_seen + self.retention_ms)
        return min(times) if times else 0
