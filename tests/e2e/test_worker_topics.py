"""A worker refuses topics it cannot write to, instead of crashing its agent on every batch."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.kafka_fixtures import Pipeline

pytestmark = pytest.mark.kafka


async def _create(broker: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


def test_an_output_topic_with_too_few_partitions_stops_the_worker_at_start_with_status_2(pipeline: Pipeline) -> None:
    """As the broker auto-creates it (1 partition) when a reader asks for it before the worker creates it."""
    settings = replace(pipeline.settings, output_topic=pipeline.settings.output_topic + "-one")
    asyncio.run(_create(settings.broker, settings.output_topic, 1))
    single = Pipeline(settings, pipeline.workdir)
    worker = single.start_worker()
    pipeline.workers.append(worker)  # stopped with the fixture's, should it not exit by itself

    status = worker.process.wait(timeout=60)

    assert status == 2
    assert f"topic {settings.output_topic} has 1 partition(s), the worker needs 8" in worker.log.read_text()
