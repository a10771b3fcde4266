"""The resolved state is a function of the *set* of a member's events (hypothesis)."""

from __future__ import annotations

import random
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import event_from_envelope
from stream.domain.model import Event, MemberState
from stream.domain.precedence import merge, resolve, resolve_members
from stream.synthetic import member_story


@st.composite
def member_events(draw: st.DrawFn) -> list[Event]:
    """Distinct events of one member across every source and channel the generator knows."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    stories = [member_story(rng, "m1", draw(st.integers(1, 6))) for _ in range(draw(st.integers(1, 3)))]
    envelopes = [{**e, "event_id": f"{i}"} for i, e in enumerate(e for story in stories for e in story)]
    return [event_from_envelope(e) for e in envelopes]


def fold(events: list[Event]) -> MemberState:
    """Resolve events in the order given."""
    state = reduce(resolve, events, None)
    assert state is not None
    return state


@settings(max_examples=300)
@given(events=member_events(), data=st.data())
def test_any_permutation_gives_the_same_state(events: list[Event], data: st.DataObject) -> None:
    """Arrival order cannot change the resolved state."""
    shuffled = data.draw(st.permutations(events))

    assert fold(events) == fold(shuffled)


@settings(max_examples=300)
@given(events=member_events(), data=st.data())
def test_any_duplication_gives_the_same_state(events: list[Event], data: st.DataObject) -> None:
    """Redelivered events (any number of times, anywhere) change nothing."""
    extra = data.draw(st.lists(st.sampled_from(events), max_size=10))
    replayed = data.draw(st.permutations(events + extra))

    assert fold(events) == fold(replayed)


@settings(max_examples=300)
@given(events=member_events(), data=st.data())
def test_any_split_into_batches_gives_the_same_state(events: list[Event], data: st.DataObject) -> None:
    """Resolving batches separately and merging them equals resolving everything at once."""
    cut = data.draw(st.integers(1, len(events)))
    left, right = events[:cut], events[cut:] or events[:1]

    assert fold(events) == merge(fold(left), fold(right)) == merge(fold(right), fold(left))


@settings(max_examples=200)
@given(events=member_events())
def test_the_status_never_ranks_below_any_single_event(events: list[Event]) -> None:
    """The join is an upper bound: each event's own decision is at most the resolved one."""
    state = fold(events)

    assert all(event.decision <= state.status for event in events)
    assert len(events) == len(state.event_ids)


@settings(max_examples=300)
@given(events=member_events(), data=st.data())
def test_resolving_all_at_once_equals_resolving_one_by_one(events: list[Event], data: st.DataObject) -> None:
    """The offline one-pass join (resolve_members) gives exactly the incremental result, duplicates included."""
    extra = data.draw(st.lists(st.sampled_from(events), max_size=5))
    arrival = data.draw(st.permutations(events + extra))

    assert {arrival[0].member_id: fold(arrival)} == resolve_members(arrival)
