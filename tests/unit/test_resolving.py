"""MemberResolver: batches handed on, commits after them, a revoke that waits for the batch in hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from stream.config import Settings
from stream.kafka.resolving import MemberResolver

SETTINGS = Settings(app_id="sf", commit_interval=3600.0)
TOPIC = SETTINGS.by_member_topic


class Consumer:
    """Hands out the batches given, then stops the resolver; counts commits."""

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches
        self.commits = 0
        self.resolver: MemberResolver | None = None

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[str]]:
        """Return the next batch, or stop the resolver once none is left."""
        if not self.batches:
            assert self.resolver is not None
            self.resolver._stopped.set()  # should_stop: the loop ends
            return {}
        return {TopicPartition(TOPIC, 0): self.batches.pop(0)}

    async def commit(self) -> None:
        """Count a commit."""
        self.commits += 1


def resolver_with(
    batches: list[list[str]], handle: Any, fatal: Any = None
) -> tuple[MemberResolver, Consumer, list[set[int]]]:
    """Return a resolver over a fake consumer, and the partition sets it was assigned."""
    assigned: list[set[int]] = []

    async def on_assigned(partitions: set[int]) -> None:
        assigned.append(partitions)

    resolver = MemberResolver(SETTINGS, handle, on_assigned, fatal or (lambda *_: None))
    consumer = Consumer(batches)
    consumer.resolver = resolver
    resolver.consumer = consumer
    return resolver, consumer, assigned


async def test_each_batch_is_handed_on_whole_and_commits_are_spaced_by_the_interval() -> None:
    """Two batches, both handled in order; within one interval only the first commits, the rest once idle."""
    handled: list[list[str]] = []

    async def handle(batch: list[str]) -> None:
        handled.append(batch)

    resolver, consumer, _ = resolver_with([["a", "b"], ["c"]], handle)
    await asyncio.wait_for(MemberResolver._run(resolver), 5)

    assert [["a", "b"], ["c"]] == handled
    assert 2 == consumer.commits  # the first batch's, then the second's when the topic went idle


async def test_a_revoke_waits_for_the_batch_in_hand_then_commits_it() -> None:
    """Partitions leave only after the batch being handled is done and committed (no late writes)."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def handle(_: list[str]) -> None:
        started.set()
        await release.wait()

    resolver, consumer, _ = resolver_with([["a"]], handle)
    run = asyncio.ensure_future(MemberResolver._run(resolver))
    await asyncio.wait_for(started.wait(), 5)
    revoke = asyncio.ensure_future(resolver.revoked())
    for _ in range(50):  # loop turns enough for a revoke that did not wait to have finished
        await asyncio.sleep(0)

    assert not revoke.done()
    assert resolver.rebalancing
    commits_before = consumer.commits
    release.set()
    await asyncio.wait_for(revoke, 5)
    await asyncio.wait_for(run, 5)
    assert consumer.commits > commits_before  # the revoke committed what the batch handled


async def test_an_assignment_restores_only_the_re_key_topics_partitions_and_ends_the_rebalance() -> None:
    """The group settled: the partitions of the re-key topic (not another topic's) are handed to the store."""
    resolver, _, assigned = resolver_with([], lambda _: None)
    resolver.rebalancing = True

    await resolver.reassigned({TopicPartition(TOPIC, 1), TopicPartition(TOPIC, 4), TopicPartition("other", 2)})

    assert [{1, 4}] == assigned
    assert (False, 1) == (resolver.rebalancing, resolver.rebalancing_count)


async def test_a_batch_that_fails_ends_the_process_and_commits_nothing() -> None:
    """The failure goes to ``fatal`` (the watchdog's exit) before anything of the batch is committed."""
    reported: list[tuple[str, BaseException]] = []
    failure = ValueError("not a pack")

    async def handle(_: list[str]) -> None:
        raise failure

    resolver, consumer, _ = resolver_with([["a"]], handle, lambda what, why: reported.append((what, why)))

    with pytest.raises(ValueError, match="not a pack"):
        await asyncio.wait_for(MemberResolver._run(resolver), 5)
    assert [("resolve_members", failure)] == reported
    assert 0 == consumer.commits
