"""The worker on a three-node cluster (replication 3, min.insync.replicas 2) that loses a broker under load."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.kafka.topics import check_topics
from tests.e2e.test_worker_kafka import backwards, offline, sample
from tests.kafka_fixtures import STORES, Pipeline, differences_of, pipeline_on, side_by_side
from tests.secured_fixtures import LocalKafka

pytestmark = pytest.mark.kafka


@pytest.fixture
def replicated_pipeline(kafka_cluster: LocalKafka, tmp_path: Path) -> Iterator[Pipeline]:
    """Return a fresh pipeline on the three-node cluster, its topics replicated three times, min ISR 2."""
    yield from pipeline_on(kafka_cluster.settings(replication_factor=3, min_insync_replicas=2), tmp_path)


@pytest.mark.parametrize("stores", [STORES], ids=["+".join(STORES)])
def test_a_broker_killed_under_load_loses_nothing_and_the_worker_never_exits(
    replicated_pipeline: Pipeline, kafka_cluster: LocalKafka, stores: tuple[str, ...]
) -> None:
    """Kill -9 one of three brokers mid-stream, restart it: each store's worker stays up and ends at the offline result."""
    pipeline = replicated_pipeline
    lines_ = side_by_side(pipeline, stores)  # one worker per store, same input: one broker loss for both
    lines = sample(2000, 10, seed=51)
    expected = offline(lines)
    for line in lines_:
        assert [] == asyncio.run(check_topics(line.settings))  # replication 3, min ISR 2, as created
    workers = [line.start_worker() for line in lines_]
    pipeline.produce(lines[: len(lines) // 3])
    pipeline.wait_for(
        lambda: all(len(line.read(line.settings.output_topic)) > 500 for line in lines_), 180, "the workers to be busy"
    )

    rest = threading.Thread(target=pipeline.produce, args=(lines[len(lines) // 3 :],))
    rest.start()
    kafka_cluster.run("kill-node", "2")
    rest.join(timeout=300)
    assert [None] * len(workers) == [worker.process.poll() for worker in workers]
    kafka_cluster.run("start-node", "2")

    pipeline.wait_for(
        lambda: all(line.latest_states() == expected for line in lines_),
        300,
        "the stream to reach the offline result after losing a broker",
        lambda: differences_of(lines_, expected),
    )
    assert not rest.is_alive()
    for line, worker in zip(lines_, workers, strict=True):
        final = line.latest_states()
        assert worker.process.poll() is None
        assert sum(state["events"] for state in expected.values()) == sum(state["events"] for state in final.values())
        assert [] == backwards(line.read(line.settings.output_topic))
        worker.terminate()
    assert [0] * len(workers) == [worker.stop() for worker in workers]
