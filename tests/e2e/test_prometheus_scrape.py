"""A real Prometheus (Debian's package) scrapes a running worker fed with a known stream."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.domain.catalog import range_of
from stream.resolver import DeadLetter, events_of
from stream.synthetic import stream
from tests.kafka_fixtures import Pipeline, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]
PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Start a throw-away Prometheus on a free loopback port; yield (port, config path)."""
    if PROMETHEUS is None:
        pytest.fail("prometheus missing: `make test` installs Debian's prometheus package")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\nscrape_configs: []\n")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            "--web.enable-lifecycle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        yield port, config
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(port: int, promql: str) -> list[dict[str, Any]]:
    """Run an instant PromQL query over Prometheus's HTTP API."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
        return result


def test_prometheus_sees_the_expected_per_range_counts(pipeline: Pipeline, prometheus: tuple[int, Path]) -> None:
    """Sum by (range) (statusflow_events_total) over Prometheus equals the offline count per range."""
    lines = [orjson.dumps(e) for e in stream(300, 5, seed=8, duplicates=0.2)] + [b"garbage"] * 3
    events = {
        item.event_id: item
        for line in lines
        for item in events_of(line, "envelope")
        if not isinstance(item, DeadLetter)
    }
    expected = Counter(range_of(e.decision.outcome.code).name for e in events.values())
    worker = pipeline.start_worker()
    port, config = prometheus
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: statusflow\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{worker.web_port}']}}]\n"
    )
    pipeline.wait_for(lambda: _reload(port), 30, "Prometheus to start")

    pipeline.produce(lines)

    def counts() -> dict[str, float]:
        return {
            r["metric"]["range"]: float(r["value"][1]) for r in query(port, "sum by (range) (statusflow_events_total)")
        }

    pipeline.wait_for(
        lambda: {k: v for k, v in counts().items() if v} == expected, 120, "Prometheus to see every event"
    )
    assert "3" == query(port, "sum(statusflow_dead_letters_total)")[0]["value"][1]
    assert "1" == query(port, 'up{job="statusflow"}')[0]["value"][1]


def _reload(port: int) -> bool:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback only
            return True
    except OSError:
        return False
