"""The worker's topic declarations: replication and min.insync.replicas reach every one."""

from __future__ import annotations

import pytest

from stream.config import Settings
from stream.kafka.topics import topic_specs
from stream.providers.registry import FORMATS


@pytest.mark.parametrize(("replication", "min_isr", "expected_isr"), [(1, 0, "1"), (3, 0, "2"), (3, 3, "3")])
def test_every_topic_the_worker_creates_gets_the_replication_and_min_isr(
    replication: int, min_isr: int, expected_isr: str
) -> None:
    """Raw, re-key, output, dead-letter, changelog and leader topics: all at the configured durability."""
    specs = topic_specs(Settings(app_id="sf", replication_factor=replication, min_insync_replicas=min_isr))

    # a raw topic per format, dispatches, two re-keys, output, dead letters, two changelogs, leader
    assert len(FORMATS) + 8 == len(specs)
    assert {replication} == {spec.replication_factor for spec in specs}
    assert {expected_isr} == {spec.topic_configs["min.insync.replicas"] for spec in specs}


def test_the_changelog_is_declared_as_faust_would_make_it() -> None:
    """Compacted, 8 MiB records, one partition per worker partition; the leader topic has one partition."""
    specs = {spec.name: spec for spec in topic_specs(Settings(app_id="sf"))}

    changelog = specs["sf-member-states-changelog"]
    assert ("compact", "8388608", 8) == (
        changelog.topic_configs["cleanup.policy"],
        changelog.topic_configs["max.message.bytes"],
        changelog.num_partitions,
    )
    assert 1 == specs["sf-__assignor-__leader"].num_partitions
