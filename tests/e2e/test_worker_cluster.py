"""The worker on a three-node cluster (replication 3, min.insync.replicas 2) that loses a broker under load."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.kafka.topics import check_topics
from tests.e2e.test_worker_kafka import backwards, offline, sample
from tests.kafka_fixtures import Pipeline, pipeline_on
from tests.secured_fixtures import LocalKafka

pytestmark = pytest.mark.kafka


@pytest.fixture
def replicated_pipeline(kafka_cluster: LocalKafka, tmp_path: Path) -> Iterator[Pipeline]:
    """Return a fresh pipeline on the three-node cluster, its topics replicated three times, min ISR 2."""
    yield from pipeline_on(kafka_cluster.settings(replication_factor=3, min_insync_replicas=2), tmp_path)


def test_a_broker_killed_under_load_loses_nothing_and_the_worker_never_exits(
    replicated_pipeline: Pipeline, kafka_cluster: LocalKafka
) -> None:
    """Kill -9 one of three brokers mid-stream, restart it: the worker stays up and ends at the offline result."""
    pipeline = replicated_pipeline
    lines = sample(2000, 10, seed=51)
    expected = offline(lines)
    assert [] == asyncio.run(check_topics(pipeline.settings))  # replication 3, min ISR 2, as created
    worker = pipeline.start_worker()
    pipeline.produce(lines[: len(lines) // 3])
    pipeline.wait_for(lambda: len(pipeline.read(pipeline.settings.output_topic)) > 500, 180, "the worker to be busy")

    rest = threading.Thread(target=pipeline.produce, args=(lines[len(lines) // 3 :],))
    rest.start()
    kafka_cluster.run("kill-node", "2")
    rest.join(timeout=300)
    assert worker.process.poll() is None
    kafka_cluster.run("start-node", "2")

    pipeline.wait_for(
        lambda: pipeline.latest_states() == expected,
        300,
        "the stream to reach the offline result after losing a broker",
        lambda: pipeline.differences(expected),
    )
    final = pipeline.latest_states()
    assert not rest.is_alive()
    assert worker.process.poll() is None
    assert sum(state["events"] for state in expected.values()) == sum(state["events"] for state in final.values())
    assert [] == backwards(pipeline.read(pipeline.settings.output_topic))
    assert 0 == worker.stop()
