"""A worker asked to stop while its broker is gone still stops, within STATUSFLOW_STOP_TIMEOUT."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_fixtures import STORES, Pipeline, WorkerProcess, pipeline_on, side_by_side
from tests.secured_fixtures import LocalKafka

pytestmark = pytest.mark.kafka


@pytest.fixture
def doomed_pipeline(disposable_kafka: LocalKafka, tmp_path: Path) -> Iterator[Pipeline]:
    """Return a pipeline on the broker this module kills."""
    yield from pipeline_on(disposable_kafka.settings(), tmp_path)


def ready(worker: WorkerProcess) -> bool:
    """Whether the worker's /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.parametrize("stores", [STORES], ids=["+".join(STORES)])
def test_sigterm_with_the_broker_gone_ends_the_worker_within_the_stop_timeout(
    doomed_pipeline: Pipeline, disposable_kafka: LocalKafka, stores: tuple[str, ...]
) -> None:
    """
    Broker killed, then SIGTERM: the worker ends within STATUSFLOW_STOP_TIMEOUT (5 s here) plus a margin; was 62 s.

    Either its stop completes in time (status 0: nothing was committed that was not written) or the
    stop timer ends it (status 1, saying so). Since the resolver reads the re-key topic with aiokafka,
    not through Faust's consumer thread, the stop completes by itself (about 2.4 s here).
    """
    doomed_pipeline.worker_env = {"STATUSFLOW_STOP_TIMEOUT": "5"}
    workers = [line.start_worker() for line in side_by_side(doomed_pipeline, stores)]  # one per store
    doomed_pipeline.wait_for(lambda: all(ready(worker) for worker in workers), 120, "the workers to be ready")
    disposable_kafka.run("kill-node", "1")

    started = time.monotonic()
    for worker in workers:
        worker.terminate()
    for store, worker in zip(stores, workers, strict=True):
        try:
            code = worker.process.wait(timeout=max(1.0, started + 60 - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            pytest.fail(f"the worker on {store} ignored SIGTERM for 60 s\n{worker.log.read_text()[-3000:]}")
        seconds = time.monotonic() - started

        log = worker.log.read_text()
        timed_out = "statusflow worker: not stopped 5 s after the stop began (STATUSFLOW_STOP_TIMEOUT" in log
        assert seconds < 5 + 10, (store, seconds, log[-3000:])
        assert (1 if timed_out else 0) == code, (store, code, seconds, log[-3000:])
