"""`statusflow resolve --jobs`: a split by member must give exactly what one process gives."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import encode_state
from stream.domain.model import MemberState
from stream.resolver import Sinks, Tally, resolve_lines
from stream.shards import merge_shares, resolve_share, share_of

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

lines_strategy = st.lists(
    st.one_of(
        st.builds(
            envelope, st.sampled_from([f"m{i}" for i in range(8)]), st.sampled_from(STATUSES), st.integers(0, 30)
        ),
        st.sampled_from(AWKWARD),
    ),
    max_size=60,
)


def one_process(lines: list[bytes]) -> tuple[list[bytes], list[bytes], Tally]:
    """Return what a single run writes: states, dead letters, counts."""
    states: dict[str, MemberState] = {}
    tally = Tally()
    dead: list[bytes] = []
    numbered = [("in.jsonl", n, line) for n, line in enumerate(lines, 1)]
    resolve_lines(numbered, "envelope", states, tally, Sinks(lambda d: dead.append(orjson.dumps(d.document()))))
    return [encode_state(states[m]) for m in sorted(states)], dead, tally


def split(lines: list[bytes], shares: int) -> tuple[list[bytes], list[bytes], Tally]:
    """Return what the shares write together, merged as the parent merges them."""
    numbered = [("in.jsonl", n, line) for n, line in enumerate(lines, 1)]
    states, dead, tally, _ = merge_shares([resolve_share(numbered, share, shares) for share in range(shares)])
    return list(states), list(dead), tally


@settings(max_examples=300, deadline=None)
@given(lines_strategy, st.integers(2, 5))
def test_any_split_by_member_writes_exactly_what_one_process_writes(lines: list[bytes], shares: int) -> None:
    """Same states, same dead letters in the same order, same counts, for any input and any share count."""
    assert one_process(lines) == split(lines, shares)


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
