"""`statusflow resolve --jobs`: a split by member must give exactly what one process gives."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import encode_state
from stream.domain.model import MemberState
from stream.resolver import Sinks, Tally, record_of, resolve_lines
from stream.shards import Chunk, ShareLines, merge_shares, plan_chunks, resolve_owned, route, share_of

STATUSES = ["DELIVRD", "UNDELIV", "EXPIRED", "ACCEPTD", "REJECTD"]


def envelope(member: str, status: str, event: int) -> bytes:
    """Return a valid smpp envelope line."""
    return orjson.dumps(
        {
            "member_id": member,
            "source": "smpp",
            "status": status,
            "occurred_at": 1_700_000_000_000 + event,
            "event_id": str(event),
        }
    )


# Lines that are hard on the byte scan: spacing, escapes, a repeated or nested key, bad input.
AWKWARD = [
    b'{"member_id" : "m1", "source": "smpp", "status": "DELIVRD", "occurred_at": 1700000000000}',  # spaces
    b'{"member\\u005fid":"m2","source":"smpp","status":"DELIVRD","occurred_at":1700000000000}',  # escaped key
    b'{"member_id":7,"source":"smpp","status":"UNDELIV","occurred_at":1700000000000}',  # integer id
    b'{"member_id":"m0","member_id":"m3","source":"smpp","status":"DELIVRD","occurred_at":1700000000000}',  # twice
    b'{"source":"smpp","status":"DELIVRD","occurred_at":1700000000000,"detail":{"member_id":"m1"}}',  # nested only
    b'{"member_id":"m4","source":"smpp","status":"DELIVRD","occurred_at":1,"detail":{"n":"\\"member_id\\":\\"m5\\""}}',
    b'{"member_id":"m\\"6","source":"smpp","status":"DELIVRD","occurred_at":1700000000000}',  # escaped value
    b"{oops",
    b'{"member_id":"m1","source":"pigeon","status":"DELIVRD","occurred_at":1700000000000}',
]

LINE_ENDS = [b"\n", b"\r\n"]
BLANK = [b"", b"   ", b"\t\r"]

lines_strategy = st.lists(
    st.one_of(
        st.builds(
            envelope, st.sampled_from([f"m{i}" for i in range(8)]), st.sampled_from(STATUSES), st.integers(0, 30)
        ),
        st.sampled_from(AWKWARD),
        st.sampled_from(BLANK),
    ),
    max_size=60,
)


@st.composite
def files_strategy(draw: st.DrawFn) -> list[bytes]:
    """Return 1-3 files of lines with mixed line ends; the last line may have none."""
    files = []
    for _ in range(draw(st.integers(1, 3))):
        lines = draw(lines_strategy)
        ends = [draw(st.sampled_from(LINE_ENDS)) for _ in lines]
        if draw(st.booleans()) and lines:
            ends[-1] = b""
        files.append(b"".join(line + end for line, end in zip(lines, ends, strict=True)))
    return files


def one_process(files: list[bytes]) -> tuple[list[bytes], list[bytes], Tally]:
    """Return what a single run writes: states, dead letters, counts (lines read as from a file)."""
    states: dict[str, MemberState] = {}
    tally = Tally()
    dead: list[bytes] = []
    numbered = [
        (f"f{file}", n, record)
        for file, data in enumerate(files)
        for n, line in enumerate(io.BytesIO(data), 1)
        if (record := record_of(line)) is not None
    ]
    resolve_lines(numbered, "envelope", states, tally, Sinks(lambda d: dead.append(orjson.dumps(d.document()))))
    return [encode_state(states[m]) for m in sorted(states)], dead, tally


def split(files: list[bytes], cuts: list[int], shares: int) -> tuple[list[bytes], list[bytes], Tally]:
    """Return what the shares write together, chunks cut at the line ends after ``cuts``, merged as the parent does."""
    chunks, routed = [], []
    for file, data in enumerate(files):
        ends = {len(data)} | {data.find(b"\n", cut) + 1 or len(data) for cut in cuts if cut < len(data)}
        start = 0
        for end in sorted(ends):
            if end > start:
                chunks.append(Chunk(file, f"f{file}", start, end))
                routed.append(route(data[start:end], start, shares))
                start = end
    by_path = {f"f{file}": data for file, data in enumerate(files)}
    results = [resolve_owned(ShareLines(chunks, routed, share, by_path)) for share in range(shares)]
    states, dead, tally, _ = merge_shares(results)
    return list(states), list(dead), tally


@settings(max_examples=300, deadline=None)
@given(files_strategy(), st.lists(st.integers(0, 2_000), max_size=4), st.integers(2, 5))
def test_any_split_by_member_writes_exactly_what_one_process_writes(
    files: list[bytes], cuts: list[int], shares: int
) -> None:
    """Same states, same dead letters in the same order, same counts: any input, chunks and share count."""
    assert one_process(files) == split(files, cuts, shares)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"")), st.integers(1, 6), st.integers(1, 64))
def test_chunks_cover_a_file_exactly_and_end_at_line_ends(data: bytes, pieces: int, chunk_bytes: int) -> None:
    """Consecutive ranges from 0 to the end, each ending just after a line end (or at the end of the file)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "in.jsonl"
        path.write_bytes(data)
        chunks = plan_chunks([str(path)], pieces, chunk_bytes)
    assert [c.start for c in chunks] == [0, *(c.end for c in chunks[:-1])][: len(chunks)]
    assert (chunks[-1].end if chunks else 0) == len(data)
    assert all(data[c.end - 1 : c.end] == b"\n" for c in chunks[:-1])
    assert all(c.end > c.start for c in chunks)


@pytest.mark.parametrize("line", [AWKWARD[i] for i in (1, 2, 3, 6, 7)])
def test_the_scan_leaves_lines_it_cannot_vouch_for_to_the_decoder(line: bytes) -> None:
    """Only a plain, single, unescaped member_id string is routed without decoding."""
    assert -1 == share_of(line, 4)


def test_the_scan_routes_a_plain_line_by_its_member() -> None:
    """The routed share is the member's, whichever field order the line has."""
    first = share_of(envelope("m1", "DELIVRD", 1), 4)
    reordered = b'{"status":"DELIVRD","member_id":"m1","source":"smpp","occurred_at":1}'
    assert first == share_of(reordered, 4)
    assert 0 <= first < 4
