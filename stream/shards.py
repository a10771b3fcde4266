"""
Offline resolution split by member across processes: ``statusflow resolve --jobs N``.

A member's state depends on all of its events, so the work splits by member, not by line: every
process reads every line, but decodes only the lines of its own members (``share_of``), found by
a byte scan much cheaper than decoding. Each process resolves its members with the same loop as
a single run and returns their documents already encoded, sorted; the parent merges them. No
member state crosses a process boundary (pickling states cost more than the split saved).

A line whose member the scan cannot vouch for (no string ``member_id``, the key twice, escapes)
is decoded by every process; each keeps it only if the decoded member is its own, and dead
letters from such lines are written by share 0 alone. So each line is applied or dead-lettered
exactly once, and the output is byte-identical to a single run (tested).
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from stream.codec import decode_event, encode_state
from stream.domain.errors import BadEventError
from stream.domain.model import MemberState
from stream.resolver import DeadLetter, Sinks, Tally, resolve_lines

Lines = Callable[[int], Iterable[tuple[str, int, bytes]]]  # share -> (file, line number, record)

_MEMBER_KEY = b'"member_id"'
_MEMBER_VALUE = re.compile(rb'"member_id"\s*:\s*"([^"]*)"')
_COMPACT_MEMBER = b'"member_id":"'
_ANY_SHARE = -1
_BACKSLASH = 0x5C  # an int: `in` is then a memchr, several times faster than a bytes needle


@dataclass
class ShareResult:
    """What one share found: its members' encoded states (sorted), its dead letters, its counts."""

    states: list[tuple[str, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[int, bytes]] = field(default_factory=list)  # (position in the input, document)
    tally: Tally = field(default_factory=Tally)


def share_of(line: bytes, shares: int) -> int:
    """
    Return the share whose member this line is about, or ``_ANY_SHARE`` if only decoding can tell.

    The scan vouches for a member only when the line holds the key once, with a plain string
    value and no backslash anywhere (a key spelled with escapes, or a key inside a string, needs
    one): then it is the member the decoder will read.
    """
    # Plain byte searches, each line scanned about once: this runs for every line in every process.
    if _BACKSLASH in line:
        return _ANY_SHARE
    first = line.find(_MEMBER_KEY)
    if first < 0 or line.find(_MEMBER_KEY, first + len(_MEMBER_KEY)) >= 0:
        return _ANY_SHARE
    start = first + len(_COMPACT_MEMBER)
    if line.startswith(_COMPACT_MEMBER, first):  # the common spelling: no space around the colon
        member = line[start : line.find(b'"', start)]
    else:
        found = _MEMBER_VALUE.search(line, first)
        if found is None:
            return _ANY_SHARE
        member = found.group(1)
    return zlib.crc32(member) % shares


def resolve_share(lines: Iterable[tuple[str, int, bytes]], share: int, shares: int) -> ShareResult:
    """Resolve the lines of one share's members, in input order (the body of one process)."""
    owned: list[tuple[int, str, int, bytes]] = []
    for position, (name, lineno, line) in enumerate(lines):
        owner = share_of(line, shares)
        if owner == _ANY_SHARE:
            owner = _decoded_owner(line, shares)
        if owner == share:
            owned.append((position, name, lineno, line))
    result = ShareResult()
    at = 0  # the input position of the line being resolved, for the dead letters' order

    def in_order() -> Iterator[tuple[str, int, bytes]]:
        nonlocal at
        for position, name, lineno, line in owned:
            at = position
            yield name, lineno, line

    def on_dead(letter: DeadLetter) -> None:
        result.dead_letters.append((at, orjson.dumps(letter.document())))

    states: dict[str, MemberState] = {}
    resolve_lines(in_order(), "envelope", states, result.tally, Sinks(on_dead))
    result.states = [(member_id, encode_state(states[member_id])) for member_id in sorted(states)]
    return result


def _decoded_owner(line: bytes, shares: int) -> int:
    # The owner decodes such a line a second time in resolve_lines: they are rare, and keeping
    # one decode path keeps the dead letters and counts exactly those of a single run.
    try:
        member_id = decode_event(line).member_id
    except BadEventError:
        return 0  # a dead letter: share 0 writes it
    return zlib.crc32(member_id.encode()) % shares


def resolve_in_processes(lines_of_share: Lines, shares: int) -> tuple[Iterator[bytes], Iterator[bytes], Tally, int]:
    """
    Resolve in ``shares`` processes; ``lines_of_share(share)`` gives each process the whole input.

    Returns:
        The encoded states sorted by member, the dead-letter documents in input order, the summed
        counts, and the number of members.

    """
    # fork: the children inherit the loaded core and its classification cache, and start at once.
    with multiprocessing.get_context("fork").Pool(shares) as pool:
        results = pool.starmap(_share_process, [(lines_of_share, share, shares) for share in range(shares)])
    return merge_shares(results)


def merge_shares(results: list[ShareResult]) -> tuple[Iterator[bytes], Iterator[bytes], Tally, int]:
    """Merge what the shares found into what one process would write (see ``resolve_in_processes``)."""
    tally = Tally()
    for result in results:
        tally.add(result.tally)
    states = (encoded for _, encoded in heapq.merge(*(r.states for r in results)))
    dead = (document for _, document in heapq.merge(*(r.dead_letters for r in results)))
    return states, dead, tally, sum(len(r.states) for r in results)


def _share_process(lines_of_share: Lines, share: int, shares: int) -> ShareResult:
    return resolve_share(lines_of_share(share), share, shares)


def usable_cpus() -> int:
    """Return how many CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
