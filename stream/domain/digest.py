"""
Which events a member has seen, in bounded space: exact for the first ``EXACT`` ids, then a Bloom filter.

The member's state does not need the ids to be idempotent: the per-message join (max decision, "or"
of the reminder flag and of the milestones) is a semilattice, so a replayed event changes nothing by
itself. The ids serve two lesser purposes: telling a duplicate from a new event (the metrics, and
whether a state must be written again), and counting the distinct events (the public ``events``).
Those may be approximate; the state's outcome never is (README, "Precedence").

A digest ("seen") is either

- a ``frozenset`` of up to ``EXACT`` ids: exact, as before; or, past that,
- an ``int`` of ``BITS`` bits, a Bloom filter over *all* the member's ids (``HASHES`` bits set per
  id, by double hashing of a BLAKE2b digest: stable across processes, unlike ``hash``).

Both are functions of the *set* of ids (a filter is the "or" of its ids' bits), so a digest, and the
count read from it, cannot depend on arrival order, duplicates or batching; ``union`` joins two.
A filter never forgets an id (no false negatives), so a replay is always recognised; a new id whose
bits all happen to be set already (a false positive) is taken for a duplicate *by the digest only*:
``precedence.resolve`` still joins its decision. Sizes and error rates are argued next to the
constants below and in the README.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from hashlib import blake2b

# Ids kept exactly. Members of a real campaign see a handful of events per message (handed over,
# delivered, opened, clicked) and a few messages, so almost every member stays exact: its count is
# exact and no new event is ever mistaken for a duplicate.
EXACT = 32
# The filter: 2 KiB, whatever the number of events. With n ids and k hashes the chance that a new
# id reads as seen is (1 - e^(-kn/m))^k; k = 6 is optimal near n = 1,900 (k = m/n ln 2):
# n = 500: 1.4e-5, 1,000: 8.4e-4, 2,000: 2.0%, 5,000: 36%.
BITS = 16_384
HASHES = 6
_MASK64 = (1 << 64) - 1

Seen = frozenset[str] | int
NONE: frozenset[str] = frozenset()


def bits(event_id: str) -> int:
    """Return the filter bits of one id (``HASHES`` positions, some may coincide)."""
    digest = int.from_bytes(blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest(), "little")
    first, step = digest & _MASK64, (digest >> 64) | 1
    found = 0
    for i in range(HASHES):
        found |= 1 << ((first + i * step) % BITS)
    return found


def bloom(event_ids: Iterable[str]) -> int:
    """Return the filter over ``event_ids``."""
    found = 0
    for event_id in event_ids:
        found |= bits(event_id)
    return found


def of(event_ids: Iterable[str]) -> Seen:
    """Return the digest of a set of ids."""
    exact = frozenset(event_ids)
    return exact if len(exact) <= EXACT else bloom(exact)


def add(seen: Seen, event_id: str) -> Seen:
    """Return ``seen`` with one more id: ``seen`` itself (the same object) if it holds it already, or seems to."""
    if isinstance(seen, int):
        more = bits(event_id)
        return seen if seen & more == more else seen | more
    if event_id in seen:
        return seen
    if len(seen) < EXACT:
        return seen | {event_id}
    return bloom(seen) | bits(event_id)


def union(a: Seen, b: Seen) -> Seen:
    """Return the digest of both digests' ids (a filter as soon as either side or the union passes ``EXACT``)."""
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return of(a | b)
    return _filter(a) | _filter(b)


def is_exact(seen: Seen) -> bool:
    """Return whether ``seen`` holds its ids themselves (no false positives, an exact count)."""
    return isinstance(seen, frozenset)


def count(seen: Seen) -> int:
    """
    Return the number of distinct ids: exact up to ``EXACT``, estimated from the filter beyond.

    The estimate, n = -(m/k) ln(1 - X/m) for X bits set, rises with every bit set, so a member's
    count never decreases; it is at least ``EXACT + 1`` and within about 1% at 2,000 ids. It
    saturates near (m/k) ln m = 26,500: the count of a member with more events says "very many".
    """
    if isinstance(seen, frozenset):
        return len(seen)
    ones = min(seen.bit_count(), BITS - 1)
    return max(EXACT + 1, round(-BITS / HASHES * math.log1p(-ones / BITS)))


def false_positive_rate(n: int) -> float:
    """Return the chance that a new id reads as seen after ``n`` distinct ids (0 while exact)."""
    if n < EXACT:
        return 0.0
    return float((1 - math.exp(-HASHES * n / BITS)) ** HASHES)


def to_bytes(filtered: int) -> bytes:
    """Return a filter as its ``BITS // 8`` bytes."""
    return filtered.to_bytes(BITS // 8, "little")


def from_bytes(raw: bytes) -> int:
    """
    Return the filter ``to_bytes`` wrote.

    Raises:
        ValueError: ``raw`` is not a filter of this size.

    """
    if len(raw) != BITS // 8:
        raise ValueError(f"an event-id filter has {BITS // 8} bytes, not {len(raw)}")
    return int.from_bytes(raw, "little")


def _filter(seen: Seen) -> int:
    return seen if isinstance(seen, int) else bloom(seen)
