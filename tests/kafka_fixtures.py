"""
Fixtures for tests against the real local Apache Kafka broker and real worker processes.

The session starts the project's own broker (deploy/kafka/kafka.sh) on a test port with a
throw-away data directory, and stops it at the end. With STATUSFLOW_BROKER set, the tests use
that broker instead and start nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import RAW_MAX_BYTES, check_topics, ensure_topics

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
# How a worker reaches the cluster and what it creates there: passed on from the pipeline's settings.
_CLIENT_VARIABLES = (
    "STATUSFLOW_SECURITY_",
    "STATUSFLOW_SASL_",
    "STATUSFLOW_SSL_",
    "STATUSFLOW_REPLICATION_",
    "STATUSFLOW_MIN_",
)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return the bootstrap address of a running broker, starting the local one if needed."""
    if os.environ.get("STATUSFLOW_BROKER"):
        yield os.environ["STATUSFLOW_BROKER"]
        return
    port = os.environ.get("STATUSFLOW_TEST_KAFKA_PORT", "19092")
    env = {**os.environ, "STATUSFLOW_KAFKA_PORT": port, "STATUSFLOW_KAFKA_DATA": str(tmp_path_factory.mktemp("kafka"))}
    subprocess.run([str(KAFKA_SH), "start"], env=env, check=True, timeout=600)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, check=False, timeout=120)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class WorkerProcess:
    """One `statusflow worker` subprocess."""

    process: subprocess.Popen[bytes]
    web_port: int
    log: Path
    terminated: bool = False

    def kill(self) -> None:
        """Kill -9: no shutdown, no commit, no flush."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM, once, without waiting (stop() waits)."""
        if self.process.poll() is None and not self.terminated:
            self.terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """SIGTERM and wait for a graceful exit; return the exit status."""
        if self.process.poll() is None:
            self.terminate()
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout=30)
        return self.process.returncode

    def metrics(self) -> str:
        """Return the worker's /metrics text."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text


@dataclass
class Pipeline:
    """An isolated set of topics and a consumer group on the test broker, plus its workers."""

    settings: Settings
    workdir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    # Variables only the workers get (a principal of their own; the pipeline's clients stay admin).
    worker_env: dict[str, str] = field(default_factory=dict)
    siblings: list[Pipeline] = field(default_factory=list)  # made by beside(): stopped with this one

    def env(self) -> dict[str, str]:
        """Return the environment that points a worker at this pipeline."""
        s = self.settings
        values = {
            "broker": s.broker,
            "app_id": s.app_id,
            "partitions": s.partitions,
            "events_topic": s.events_topic,
            "sendgrid_topic": s.sendgrid_topic,
            "output_topic": s.output_topic,
            "dlq_topic": s.dlq_topic,
            "dispatches_topic": s.dispatches_topic,
            "dispatch_wait": s.dispatch_wait,
            "dispatch_retention": s.dispatch_retention,
            "session_timeout": s.session_timeout,
            "heartbeat_interval": s.heartbeat_interval,
            "rebalance_timeout": s.rebalance_timeout,
            "data_dir": str(self.workdir / "data"),
        }
        secured = {k: v for k, v in s.environment().items() if k.startswith(_CLIENT_VARIABLES)}
        own = {f"STATUSFLOW_{k.upper()}": str(v) for k, v in values.items()}
        return {**os.environ, **own, **secured, **self.worker_env}

    def start_worker(self) -> WorkerProcess:
        """Start one more worker of this pipeline."""
        port = free_port()
        log = self.workdir / f"worker-{len(self.workers)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream", "worker", "--web-port", str(port)],
                env=self.env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        worker = WorkerProcess(process, port, log)
        self.workers.append(worker)
        return worker

    def on_store(self, store: str) -> Pipeline:
        """Have this pipeline's workers keep their member states in ``store``; return the pipeline."""
        self.worker_env["STATUSFLOW_STORE"] = store
        return self

    def beside(self, store: str) -> Pipeline:
        """
        Return a second pipeline on the same raw topics, with its own app id, outputs and workers on ``store``.

        Both resolve the same input independently (one consumer group each), so a fault scenario runs
        once for two stores: each waits on its own output, and the broker, the input and the waits
        between are shared. Its workers are stopped with this pipeline's.
        """
        suffix = uuid.uuid4().hex[:8]
        settings = replace(
            self.settings,
            app_id=f"{self.settings.app_id}-{suffix}",
            output_topic=f"{self.settings.output_topic}-{suffix}",
            dlq_topic=f"{self.settings.dlq_topic}-{suffix}",
        )
        asyncio.run(ensure_topics(settings))
        # On the three-node cluster a broker may list the new topics a moment after their creation.
        deadline = time.monotonic() + 30
        while missing := [d for d in asyncio.run(check_topics(settings)) if d.endswith(": missing")]:
            assert time.monotonic() < deadline, f"topics still missing 30 s after their creation: {missing}"
            time.sleep(0.2)
        workdir = self.workdir / suffix
        workdir.mkdir()
        other = Pipeline(settings, workdir, worker_env=dict(self.worker_env)).on_store(store)
        self.siblings.append(other)
        return other

    def produce(self, lines: list[bytes], topic: str | None = None, *, keyed: bool = True) -> None:
        """Produce lines as records to a raw topic (default: the envelope topic)."""
        asyncio.run(
            produce_lines(
                self.settings, topic or self.settings.events_topic, lines, member_key if keyed else (lambda _: None)
            )
        )

    def produce_values(self, values: list[bytes | None], topic: str) -> None:
        """Produce raw values as they are, None as a tombstone, unkeyed and in order."""

        async def send() -> None:
            producer = AIOKafkaProducer(
                **kafka_client_options(self.settings), acks="all", max_request_size=RAW_MAX_BYTES
            )
            await producer.start()
            try:
                for value in values:
                    await producer.send_and_wait(topic, value=value, key=b"poison" if value is None else None)
            finally:
                await producer.stop()

        asyncio.run(send())

    def read(self, topic: str) -> list[Any]:
        """Return every record on ``topic`` so far, as aiokafka ConsumerRecords."""
        return asyncio.run(_read_all(self.settings, topic, self.settings.partitions))

    def wait_for(
        self, condition: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] | None = None
    ) -> None:
        """Poll ``condition`` until it holds; fail with ``detail()`` and the workers' logs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                workers = [*self.workers, *(w for p in self.siblings for w in p.workers)]
                logs = "\n".join(f"--- {w.log}\n{w.log.read_text()[-3000:]}" for w in workers)
                pytest.fail(f"timed out after {timeout}s waiting for {what}\n{detail() if detail else ''}\n{logs}")
            time.sleep(0.5)

    def differences(self, expected: dict[str, Any]) -> str:
        """Describe how the published states differ from ``expected`` (for failure messages)."""
        got = self.latest_states()
        missing = sorted(set(expected) - set(got))
        wrong = sorted(m for m in set(expected) & set(got) if expected[m] != got[m])
        lines = [f"{len(got)} members published, {len(missing)} missing, {len(wrong)} differ"]
        lines += [f"missing {m}: expected {expected[m]}" for m in missing[:3]]
        lines += [f"differs {m}:\n  expected {expected[m]}\n  got      {got[m]}" for m in wrong[:3]]
        return "\n".join(lines)

    def latest_states(self) -> dict[str, Any]:
        """Return the last published state per member on the output topic."""
        return {r.key.decode(): orjson.loads(r.value) for r in self.read(self.settings.output_topic)}


async def _read_all(settings: Settings, topic: str, partition_count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partition_count)]
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for items in batch.values():
                records.extend(items)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


# The member stores (README, "State stores"): the fault tests run on each (README, "Tests").
STORES = ("rocksdb://", "memory://")


def differences_of(pipelines: list[Pipeline], expected: dict[str, Any]) -> str:
    """Describe, per store, how each pipeline's published states differ from ``expected``."""
    return "\n".join(f"{p.worker_env.get('STATUSFLOW_STORE')}: {p.differences(expected)}" for p in pipelines)


def side_by_side(pipeline: Pipeline, stores: tuple[str, ...] = STORES) -> list[Pipeline]:
    """Return ``pipeline`` on the first store and one pipeline beside it (same raw topics) per other store."""
    return [pipeline.on_store(stores[0]), *(pipeline.beside(store) for store in stores[1:])]


@pytest.fixture
def pipeline(kafka_broker: str, tmp_path: Path) -> Iterator[Pipeline]:
    """Return a fresh pipeline (own topics and group); its workers are stopped afterwards."""
    yield from pipeline_on(Settings(broker=kafka_broker), tmp_path)


def pipeline_on(base: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """Yield a fresh pipeline on ``base``'s cluster and security (own topics and group); stop its workers after."""
    suffix = uuid.uuid4().hex[:8]
    settings = replace(
        base,
        app_id=f"statusflow-test-{suffix}",
        partitions=8,
        events_topic=f"message-events-{suffix}",
        sendgrid_topic=f"message-events-{suffix}.sendgrid",
        output_topic=f"campaign-member-status-{suffix}",
        dlq_topic=f"message-events-{suffix}.dlq",
        dispatches_topic=f"message-dispatches-{suffix}",
        session_timeout=6.0,
        heartbeat_interval=1.0,
        rebalance_timeout=10.0,
    )
    asyncio.run(ensure_topics(settings))
    line = Pipeline(settings, tmp_path)
    try:
        yield line
    finally:
        workers = [w for p in (line, *line.siblings) for w in p.workers]
        for worker in workers:  # all at once: each stop takes a second or more
            worker.terminate()
        for worker in workers:
            worker.stop()
