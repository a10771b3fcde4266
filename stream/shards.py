"""
Offline resolution split by member across processes: ``statusflow resolve --jobs N``.

A member's state depends on all of its events, so the work splits by member, not by line. Two
passes over the files, each spread over the processes:

1. Route: each process takes a byte range of a file (a ``Chunk``, cut at line ends) and finds
   which share each of its lines belongs to, by a byte scan much cheaper than decoding
   (``share_of``; for a plain chunk, counts over the whole chunk vouch for every line at once).
   It returns one small integer per line and where each line starts, not the lines.
2. Resolve: each process reads the lines of one share from memory maps of the files, in input
   order (``ShareLines``), and resolves them with the same loop as a single run; it returns its
   members' states already encoded and sorted, and its dead letters. The parent merges them by
   member and by (file, line). No member state crosses a process boundary.

A line whose member the scan cannot vouch for (no string ``member_id``, the key twice or spaced,
escapes) is decoded to find its member; one that does not decode goes to share 0, which
dead-letters it. So each line is applied or dead-lettered exactly once, and the output is
byte-identical to a single run (tested).
"""

from __future__ import annotations

import heapq
import mmap
import multiprocessing
import os
import sys
import zlib
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import accumulate, compress, count, repeat
from multiprocessing.pool import AsyncResult
from multiprocessing.sharedctypes import Synchronized
from operator import add, eq, lt
from typing import Any

import orjson

from stream.codec import decode_event, encode_state
from stream.domain.errors import BadEventError
from stream.domain.model import MemberState
from stream.resolver import DeadLetter, Sinks, Tally, record_of, resolve_lines

_MEMBER_KEY = b'"member_id"'
_COMPACT_MEMBER = b'"member_id":"'
_ANY_SHARE = -1
_NO_SHARE = -2  # a blank line
_BACKSLASH = 0x5C  # an int: `in` is then a memchr, several times faster than a bytes needle
CHUNK_BYTES = 256 * 1024 * 1024  # at most this much of a file per routing task (memory, not speed)
_PROGRESS_EVERY = 65_536  # lines between two progress reports of a process


@dataclass(frozen=True)
class Chunk:
    """A byte range of one file that starts at a line start and ends after a line end (or at EOF)."""

    file: int  # the file's place among the inputs (a file may be given twice)
    path: str
    start: int
    end: int


@dataclass
class Routed:
    """Where one chunk's lines are in the file and which share each belongs to."""

    owners: array[int]  # per line of the chunk: its share, or _NO_SHARE for a blank line
    starts: array[int]  # per line, where it starts in the file; then where the next line would

    @property
    def lines(self) -> int:
        """The chunk's physical lines, blank ones included (they count in line numbers)."""
        return len(self.owners)


@dataclass
class ShareResult:
    """What one share found: its members' encoded states (sorted), its dead letters, its counts."""

    states: list[tuple[str, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[tuple[int, int], bytes]] = field(default_factory=list)  # ((file, line), document)
    tally: Tally = field(default_factory=Tally)


def share_of(line: bytes, shares: int) -> int:
    """
    Return the share whose member this line is about, or ``_ANY_SHARE`` if only decoding can tell.

    The scan vouches for a member only when the line holds the key once, in the compact spelling
    ``"member_id":"``, and no backslash anywhere (a key spelled with escapes, or a key inside a
    string, needs one): then it is the member the decoder will read, if the line decodes at all.
    """
    # Plain byte searches, each line scanned about once: this runs for every line of the input.
    if _BACKSLASH in line:
        return _ANY_SHARE
    first = line.find(_COMPACT_MEMBER)
    if first < 0 or line.count(_MEMBER_KEY) != 1:
        return _ANY_SHARE
    start = first + len(_COMPACT_MEMBER)
    return zlib.crc32(line[start : line.find(b'"', start)]) % shares


def _plain_owners(chunk: bytes, lines: Sequence[bytes], shares: int) -> list[int] | None:
    # share_of for every line at once, when the whole chunk lets the per-line checks go: no
    # backslash anywhere, every key compact, and as many keys as lines holding one (so no line
    # holds two). None if the chunk is not that plain.
    keys = chunk.count(_MEMBER_KEY)
    if _BACKSLASH in chunk or chunk.count(_COMPACT_MEMBER) != keys:
        return None
    owners: list[int] = []
    keyed = 0
    for line in lines:
        first = line.find(_COMPACT_MEMBER)
        if first < 0:
            owners.append(_ANY_SHARE)
            continue
        keyed += 1
        start = first + len(_COMPACT_MEMBER)
        owners.append(zlib.crc32(line[start : line.find(b'"', start)]) % shares)
    return owners if keyed == keys else None


def plan_chunks(paths: Sequence[str], chunks_per_file: int, chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """Cut each file into about ``chunks_per_file`` ranges (more if they would exceed ``chunk_bytes``)."""
    chunks = []
    for file, path in enumerate(paths):
        size = os.path.getsize(path)
        if size == 0:
            continue
        pieces = max(chunks_per_file, -(-size // chunk_bytes))
        with _mapped(path) as data:
            start = 0
            for piece in range(1, pieces + 1):
                end = size if piece == pieces else data.find(b"\n", max(start, size * piece // pieces)) + 1
                if end <= 0:  # no line end after the cut: the rest of the file is one line
                    end = size
                if end > start:
                    chunks.append(Chunk(file, path, start, end))
                start = end
                if start >= size:
                    break
    return chunks


def chunk_lines(chunk: bytes) -> list[bytes]:
    """Return a chunk's physical lines, as iterating over the file gives them, without line ends."""
    lines = chunk.split(b"\n")
    if not lines[-1]:  # the chunk ends with a line end, or is empty
        lines.pop()
    return lines


def route(chunk: bytes, start: int, shares: int) -> Routed:
    """Return the share of each record of a chunk (see ``Chunk``) that begins at byte ``start`` (blank lines: none)."""
    lines = chunk_lines(chunk)
    owners = _plain_owners(chunk, lines, shares)
    if owners is None:
        owners = [share_of(line, shares) for line in lines]  # a line end does not change what the scan finds
    for index in compress(count(), map(lt, owners, repeat(0))):
        record = record_of(lines[index])
        owners[index] = _NO_SHARE if record is None else _decoded_owner(record, shares)
    starts = array("q", accumulate(map(add, map(len, lines), repeat(1)), initial=start))
    return Routed(array("h", owners), starts)


def resolve_owned(lines: ShareLines) -> ShareResult:
    """Resolve one share's records, in input order, into its encoded states, dead letters and counts."""
    result = ShareResult()

    def on_dead(letter: DeadLetter) -> None:
        position = (lines.file, letter.origin["line"])  # the line being resolved is in lines.file
        result.dead_letters.append((position, orjson.dumps(letter.document())))

    states: dict[str, MemberState] = {}
    resolve_lines(lines, "envelope", states, result.tally, Sinks(on_dead))
    result.states = [(member_id, encode_state(states[member_id])) for member_id in sorted(states)]
    return result


def merge_shares(results: list[ShareResult]) -> tuple[Iterator[bytes], Iterator[bytes], Tally, int]:
    """Merge what the shares found into what one process would write (see ``resolve_in_processes``)."""
    tally = Tally()
    for result in results:
        tally.add(result.tally)
    states = (encoded for _, encoded in heapq.merge(*(r.states for r in results)))
    dead = (document for _, document in heapq.merge(*(r.dead_letters for r in results)))
    return states, dead, tally, sum(len(r.states) for r in results)


def resolve_in_processes(
    paths: Sequence[str], shares: int, *, progress: bool = False
) -> tuple[Iterator[bytes], Iterator[bytes], Tally, int]:
    """
    Resolve the files in ``shares`` processes.

    Returns:
        The encoded states sorted by member, the dead-letter documents in input order, the summed
        counts, and the number of members.

    """
    chunks = plan_chunks(paths, shares)
    resolved = multiprocessing.get_context("fork").Value("q", 0)
    # fork: the children inherit the loaded core, its classification cache and the counter.
    with multiprocessing.get_context("fork").Pool(shares, _share_counter, (resolved,)) as pool:
        routed = pool.starmap(_route_chunk, [(chunk, shares) for chunk in chunks])
        jobs = pool.starmap_async(_resolve_share, [(chunks, routed, share) for share in range(shares)])
        if progress:
            _show_progress(jobs, resolved, sum(r.lines for r in routed))
        results = jobs.get()
    return merge_shares(results)


class ShareLines:
    """
    One share's records in input order, as (file name, line number, record) triples.

    ``file`` is the index of the input the latest record came from, so a dead letter can be put in
    input order; ``files[path]`` holds a file's bytes (a memory map, or bytes in tests).
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        routed: Sequence[Routed],
        share: int,
        files: Mapping[str, Any],
        report: Callable[[int], None] | None = None,
    ) -> None:
        """Read the records ``routed`` gives ``share`` from ``chunks`` of ``files``; ``report(n)``: n more read."""
        self.chunks, self.routed, self.share, self.files, self.report = chunks, routed, share, files, report
        self.file = 0

    def __iter__(self) -> Iterator[tuple[str, int, bytes]]:
        """Yield the records; line numbers count every line of a file, blank ones too."""
        share = self.share
        lines_before = 0  # in this chunk's file, before this chunk
        for chunk, found in zip(self.chunks, self.routed, strict=True):
            if chunk.file != self.file:
                self.file, lines_before = chunk.file, 0
            data, first = self.files[chunk.path], lines_before + 1
            owners, starts = found.owners, found.starts
            mine = list(compress(count(), map(eq, owners, repeat(share))))
            for block in range(0, len(mine), _PROGRESS_EVERY):  # blocks: a report now and then, not per line
                window = mine[block : block + _PROGRESS_EVERY]
                for index in window:  # a line ends one byte before the next starts (at its "\n")
                    yield chunk.path, first + index, data[starts[index] : starts[index + 1] - 1].rstrip(b"\r")
                if self.report is not None:
                    self.report(len(window))
            lines_before += found.lines


_counter: Synchronized[int] | None = None


def _share_counter(counter: Synchronized[int]) -> None:
    global _counter  # noqa: PLW0603 - a Pool initializer's way to hand each process the counter
    _counter = counter


def _decoded_owner(record: bytes, shares: int) -> int:
    # The owner decodes such a line a second time: they are rare, and keeping one decode path
    # keeps the dead letters and counts exactly those of a single run.
    try:
        member_id = decode_event(record).member_id
    except BadEventError:
        return 0  # a dead letter: share 0 writes it
    return zlib.crc32(member_id.encode()) % shares


def _route_chunk(chunk: Chunk, shares: int) -> Routed:
    with open(chunk.path, "rb") as handle:
        handle.seek(chunk.start)
        return route(handle.read(chunk.end - chunk.start), chunk.start, shares)


def _resolve_share(chunks: Sequence[Chunk], routed: Sequence[Routed], share: int) -> ShareResult:
    with ExitStack() as stack:
        files = {path: stack.enter_context(_mapped(path)) for path in {chunk.path for chunk in chunks}}
        return resolve_owned(ShareLines(chunks, routed, share, files, _report))


def _mapped(path: str) -> mmap.mmap:
    # A map of the whole file: ShareLines slices out a share's lines without reading the others'.
    with open(path, "rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _report(lines: int) -> None:
    # Tell the parent's progress bar (a shared counter: one lock a block of lines).
    if _counter is not None:
        with _counter.get_lock():
            _counter.value += lines


def _show_progress(jobs: AsyncResult[Any], counter: Synchronized[int], total: int) -> None:
    from tqdm import tqdm  # noqa: PLC0415 - only needed on a terminal

    with tqdm(total=total, unit=" lines", unit_scale=True, desc="resolving", file=sys.stderr) as bar:
        while not jobs.ready():
            jobs.wait(0.2)
            bar.update(counter.value - bar.n)
        bar.update(total - bar.n)


def usable_cpus() -> int:
    """Return how many CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
