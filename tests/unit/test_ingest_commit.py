"""RawIngest survives a commit refused because the group rebalanced: the new owner replays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry

from stream.config import Settings
from stream.kafka.ingest import RawIngest
from stream.metrics import Metrics


class Consumer:
    """getmany hands out one record per call; commit fails as told."""

    def __init__(self, ingest: RawIngest, failures: list[BaseException | None]) -> None:
        self.ingest = ingest
        self.failures = failures
        self.commits = 0

    async def getmany(self, **_: Any) -> dict[str, list[str]]:
        """Return one batch, or stop the service once the failures are used up."""
        if not self.failures:
            self.ingest._stopped.set()  # should_stop: the loop ends
            return {}
        return {"tp": ["record"]}

    async def commit(self) -> None:
        """Fail with the next failure, if any."""
        self.commits += 1
        failure = self.failures.pop(0)
        if failure is not None:
            raise failure


def ingest_with(
    failures: list[BaseException | None], commit_interval: float = 0.0
) -> tuple[RawIngest, Consumer, list[Any]]:
    """Return a RawIngest whose consumer fails commits as listed, and the batches it forwarded."""
    ingest = RawIngest(Settings(commit_interval=commit_interval), Metrics(CollectorRegistry()))
    consumer = Consumer(ingest, failures)
    forwarded: list[Any] = []

    async def forward(batch: list[Any]) -> None:
        forwarded.append(batch)

    ingest.consumer = consumer
    ingest.forward = forward  # type: ignore[method-assign]
    return ingest, consumer, forwarded


async def test_a_commit_refused_after_a_rebalance_is_skipped_and_reading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """CommitFailedError (membership changed) and IllegalStateError (partitions gone): logged, not fatal."""
    ingest, consumer, forwarded = ingest_with(
        [CommitFailedError("rebalanced"), IllegalStateError("no assignment"), None]
    )

    await asyncio.wait_for(RawIngest._run(ingest), 5)

    assert consumer.commits == 3
    assert len(forwarded) == 3
    assert sum("commit skipped" in r.getMessage() for r in caplog.records) == 2


async def test_any_other_commit_failure_still_crashes_the_service() -> None:
    """A broker-side failure that is not a rebalance is not swallowed: the watchdog ends the process."""
    ingest, _, _ = ingest_with([KafkaError("broken")])

    with pytest.raises(KafkaError):
        await asyncio.wait_for(RawIngest._run(ingest), 5)


async def test_commits_are_spaced_by_the_commit_interval_not_made_per_batch() -> None:
    """Within one interval only the first batch commits (a round trip each), the rest once the topics go idle."""
    ingest, consumer, forwarded = ingest_with([None, None], commit_interval=3600.0)
    batches = iter(range(3))

    async def getmany(**_: Any) -> dict[str, list[str]]:
        if next(batches, None) is None:
            ingest._stopped.set()
            return {}
        return {"tp": ["record"]}

    consumer.getmany = getmany  # type: ignore[method-assign]
    await asyncio.wait_for(RawIngest._run(ingest), 5)

    assert (3, 2) == (len(forwarded), consumer.commits)
