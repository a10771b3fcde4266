"""`statusflow topics create|check` against the real broker: what it creates is what it checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kafka_fixtures import Pipeline

pytestmark = pytest.mark.kafka


def topics(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `statusflow topics ARGS` with the pipeline's settings."""
    return subprocess.run(
        [sys.executable, "-m", "stream", "topics", *args],
        env=pipeline.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_passes_on_the_topics_the_worker_creates_and_names_each_difference_otherwise(
    pipeline: Pipeline,
) -> None:
    """The pipeline's topics match; other partitions, replication and a missing app's topics are each named."""
    matching = topics(pipeline, "check")
    differing = topics(pipeline, "check", "--partitions", "4", "--min-insync-replicas", "1")
    other_app = topics(pipeline, "check", "--app-id", "nobody-made-this")

    assert (0, "") == (matching.returncode, matching.stdout)
    assert 1 == differing.returncode
    assert f"{pipeline.settings.output_topic}: partitions is 8, the worker needs 4" in differing.stdout
    assert 1 == other_app.returncode
    assert "nobody-made-this-events-by-member: missing" in other_app.stdout


def test_create_makes_the_missing_topics_and_check_then_agrees(pipeline: Pipeline) -> None:
    """Topics for a new app id are created with their configs; a second create makes none."""
    app_id = f"{pipeline.settings.app_id}-2"
    created = topics(pipeline, "create", "--app-id", app_id)
    # KRaft acknowledges a creation before the broker's metadata lists it: ask until it does.
    pipeline.wait_for(lambda: topics(pipeline, "check", "--app-id", app_id).returncode == 0, 60, "the new topics")
    again = topics(pipeline, "create", "--app-id", app_id)
    checked = topics(pipeline, "check", "--app-id", app_id)

    assert 0 == created.returncode
    # by-member, by-message, both changelogs, leader; the raw, dispatch and output topics exist
    assert "created 5:" in created.stderr
    assert "created 0:" in again.stderr
    assert (0, "") == (checked.returncode, checked.stdout)
