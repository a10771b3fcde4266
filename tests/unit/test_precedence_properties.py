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
    # Real campaigns: events name one of a few messages, or none; some messages are reminders.
    for envelope in envelopes:
        envelope["message_id"] = draw(st.sampled_from([None, None, "a", "b", 7]))
        envelope["message_type"] = draw(st.sampled_from(["survey", "reminder", "remider", "manualResend", None]))
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
def test_no_message_ranks_below_any_of_its_events(events: list[Event]) -> None:
    """
    The join is an upper bound, per message: each event's decision is at most its message's.

    .. versionchanged:: per-message resolution
       Was "the status never ranks below any single event": across messages a delivery now
       outranks another message's bounce, so the bound holds per message, and the status is
       the strongest contribution of the messages (next test).
    """
    state = fold(events)
    messages = dict(state.messages)

    assert all(event.decision <= messages[event.message].best for event in events)
    assert all(
        messages[e.message].reminder == any(o.reminder for o in events if o.message == e.message) for e in events
    )
    assert len(events) == state.events


@settings(max_examples=200)
@given(events=member_events())
def test_the_status_is_the_strongest_contribution_overall_and_per_channel(events: list[Event]) -> None:
    """The member join is an upper bound over its messages' contributions, and one of them."""
    state = fold(events)
    contributions = [(message.channel, message.contribution) for _, message in state.messages]

    assert max(c for _, c in contributions) == state.status
    assert {ch: max(c for other, c in contributions if other == ch) for ch, _ in contributions} == dict(state.channels)


@settings(max_examples=300)
@given(events=member_events(), data=st.data())
def test_resolving_all_at_once_equals_resolving_one_by_one(events: list[Event], data: st.DataObject) -> None:
    """The offline one-pass join (resolve_members) gives exactly the incremental result, duplicates included."""
    extra = data.draw(st.lists(st.sampled_from(events), max_size=5))
    arrival = data.draw(st.permutations(events + extra))

    assert {arrival[0].member_id: fold(arrival)} == resolve_members(arrival)


@settings(max_examples=200)
@given(events=member_events(), data=st.data())
def test_a_messages_milestones_are_those_its_events_reported_in_any_order(
    events: list[Event], data: st.DataObject
) -> None:
    """What the per-message metrics count is a join too: the union of the events' milestones."""
    state = fold(data.draw(st.permutations(events)))

    for key, message in state.messages:
        expected = 0
        for event in events:
            if event.message == key:
                expected |= event.decision.outcome.reached
        assert expected == message.reached
