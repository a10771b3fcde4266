"""A member's state stays exact and bounded: the digest of event ids (stream/domain/digest.py)."""

from __future__ import annotations

import random
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from stream import records
from stream.codec import event_from_envelope, state_document
from stream.domain import digest
from stream.domain.model import Event, MemberState
from stream.domain.precedence import join_members, merge, resolve, resolve_members
from stream.synthetic import member_story

ids = st.lists(st.text(min_size=1, max_size=12), max_size=80)


def seen_of(event_ids: list[str]) -> digest.Seen:
    """Add ids one by one, as the worker does."""
    seen: digest.Seen = digest.NONE
    return reduce(digest.add, event_ids, seen)


@settings(max_examples=200)
@given(event_ids=ids, data=st.data())
def test_a_digest_is_a_function_of_the_set_of_ids(event_ids: list[str], data: st.DataObject) -> None:
    """Order, repeats and the way ids are split between two digests do not matter."""
    again = data.draw(st.permutations(event_ids + data.draw(st.lists(st.sampled_from(event_ids or ["x"]), max_size=9))))
    cut = data.draw(st.integers(0, len(again)))
    expected = digest.of(set(event_ids) | set(again))

    assert expected == seen_of(event_ids + again) == digest.union(seen_of(again[:cut]), seen_of(again[cut:]))
    assert digest.is_exact(expected) == (len(set(event_ids) | set(again)) <= digest.EXACT)


@settings(max_examples=100)
@given(event_ids=ids)
def test_a_digest_never_forgets_an_id_and_counts_exactly_while_exact(event_ids: list[str]) -> None:
    """No false negatives: every id added reads as seen; the count is exact up to EXACT and never falls."""
    seen = seen_of(event_ids)
    counts = [digest.count(seen_of(event_ids[:i])) for i in range(len(event_ids) + 1)]

    assert all(digest.add(seen, event_id) is seen for event_id in event_ids)
    assert counts == sorted(counts)
    if len(set(event_ids)) <= digest.EXACT:
        assert len(set(event_ids)) == digest.count(seen)
    else:
        assert digest.count(seen) > digest.EXACT


def test_the_filter_errs_as_argued_at_1000_and_2000_events() -> None:
    """New ids read as seen at about the rate the constants promise, and the count is within 2%."""
    fresh = [f"smpp:new-{i}" for i in range(20_000)]
    for n, (low, high) in {1_000: (0.0, 0.003), 2_000: (0.01, 0.03)}.items():
        seen = digest.of(f"smpp:m1-{i}" for i in range(n))
        mistaken = sum(1 for event_id in fresh if digest.add(seen, event_id) is seen) / len(fresh)

        assert low <= mistaken <= high, (n, mistaken, digest.false_positive_rate(n))
        assert abs(digest.count(seen) - n) / n < 0.02, (n, digest.count(seen))


@st.composite
def many_events(draw: st.DrawFn) -> list[Event]:
    """Distinct events of one member, often more than EXACT: a few messages, some reminders."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    envelopes = member_story(rng, "m1", draw(st.integers(1, 120)))
    for envelope in envelopes:
        envelope["message_id"] = rng.choice([None, None, "a", "b"])
        envelope["message_type"] = rng.choice(["survey", "reminder", None])
        envelope["campaign_id"] = rng.choice(["c1", "c2"])
    return [event_from_envelope(e) for e in envelopes]


def fold(events: list[Event]) -> MemberState:
    """Resolve events in the order given."""
    state = reduce(resolve, events, None)
    assert state is not None
    return state


@settings(max_examples=150)
@given(events=many_events(), data=st.data())
def test_replays_duplicates_permutations_and_batches_give_the_same_state_past_exact(
    events: list[Event], data: st.DataObject
) -> None:
    """The join stays a join over the set of events when the ids turn into a filter."""
    arrival = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=30))))
    cut = data.draw(st.integers(1, len(arrival)))
    left, right = arrival[:cut], arrival[cut:] or arrival[:1]
    state = fold(events)

    assert state == fold(arrival) == merge(fold(left), fold(right)) == merge(fold(right), fold(left))
    assert state == fold(arrival + arrival)  # a whole replay
    assert {"m1": state} == resolve_members(arrival)


@settings(max_examples=150)
@given(events=many_events(), data=st.data())
def test_the_one_pass_join_counts_the_duplicates_that_resolve_counts(events: list[Event], data: st.DataObject) -> None:
    """Offline summaries and the worker's metrics agree: a duplicate is what resolve returns unchanged."""
    arrival = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=30))))
    state, unchanged = None, 0
    for event in arrival:
        after = resolve(state, event)
        unchanged += after is state
        state = after

    assert ({"m1": state}, unchanged) == join_members(arrival)
    if len(events) <= digest.EXACT:  # exact: the duplicates are exactly the repeats
        assert unchanged == len(arrival) - len(events)


def saturating(n: int) -> list[Event]:
    """``n`` distinct in-transit SMPP events of one member, enough to set every bit of its filter."""
    return [
        event_from_envelope(
            {
                "member_id": "m1",
                "event_id": f"e{i}",
                "source": "smpp",
                "status": "ENROUTE",
                "occurred_at": 1_700_000_000,
            }
        )
        for i in range(n)
    ]


def test_a_false_positive_never_drops_an_events_effect() -> None:
    """With every filter bit set each new id reads as seen, yet a delivery still decides the status."""
    events = saturating(60_000)
    delivered = event_from_envelope(
        {"member_id": "m1", "event_id": "new", "source": "smpp", "status": "DELIVRD", "occurred_at": 1_700_000_001}
    )
    state = fold(events)
    assert state.seen == (1 << digest.BITS) - 1  # saturated: "new" is a false positive for sure
    assert digest.add(state.seen, delivered.event_id) is state.seen

    after = resolve(state, delivered)
    states, duplicates = join_members([*events, delivered])

    assert (2020, True) == (after.status.outcome.code, after.final)
    assert states == {"m1": after}
    assert duplicates == join_members(events)[1]  # the delivery is not one of them
    # An event that changes nothing is all a false positive can take for a duplicate.
    assert resolve(after, saturating(60_001)[-1]) is after


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5_000), seed=st.integers(0, 2**32))
def test_a_states_changelog_record_is_bounded_whatever_the_number_of_events(n: int, seed: int) -> None:
    """At most 32 ids or a 2 KiB filter (2,732 base64 characters), plus the messages: 4 KiB here."""
    rng = random.Random(seed)
    envelopes = member_story(rng, "m1", n)
    for envelope in envelopes:
        envelope["event_id"] = f"{rng.getrandbits(64):016x}-{envelope['event_id']}"  # 24+ characters each
        envelope["message_id"] = rng.choice([None, "a"])
    state = fold([event_from_envelope(e) for e in envelopes])

    encoded = records.encode_state(state)

    assert len(encoded) <= 4096, (n, len(encoded))
    assert records.decode_state(encoded) == state
    assert state_document(state)["events"] == digest.count(state.seen)
