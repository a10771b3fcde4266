"""
What the Kafka benchmarks share: a throw-away broker, the aiokafka pass-through baseline, a worker run.

Used by bench/worker_bench.py, bench/peers_bench.py, bench/state_bench.py and
bench/scaleout_bench.py (run as scripts: ``bench/`` is on their ``sys.path``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.topics import admin_client

ROOT = Path(__file__).resolve().parents[1]
KAFKA = ROOT / "deploy" / "kafka" / "kafka.sh"


def broker_env(port: int, data: Path, **extra: str) -> dict[str, str]:
    """Return the environment kafka.sh needs for a broker of our own on ``port`` with data in ``data``."""
    return {**os.environ, "STATUSFLOW_KAFKA_PORT": str(port), "STATUSFLOW_KAFKA_DATA": str(data), **extra}


@contextmanager
def broker(port: int, data: Path) -> Iterator[dict[str, str]]:
    """Start a throw-away broker (deploy/kafka/kafka.sh) and stop it, by its pid file, at the end."""
    env = broker_env(port, data)
    subprocess.run([str(KAFKA), "start"], env=env, check=True)
    try:
        yield env
    finally:
        subprocess.run([str(KAFKA), "stop"], env=env, check=False)


async def passthrough(settings: Settings, total: int, group: str) -> float:
    """Consume every raw record and produce it to ``<output>.baseline``; return records/s, first to last."""
    consumer = AIOKafkaConsumer(
        settings.events_topic,
        **kafka_client_options(settings),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
    )
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    seen = 0
    first = 0.0
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if not first and records:
                    first = time.perf_counter()
                for record in records:
                    await producer.send(f"{settings.output_topic}.baseline", record.value, key=record.key)
                seen += len(records)
        await producer.flush()
        return total / (time.perf_counter() - first)
    finally:
        await producer.stop()
        await consumer.stop()


async def create_topic(settings: Settings, name: str) -> None:
    """
    Create one topic with the worker's partition count (the broker creates no topic by itself).

    Returns once every partition has a leader: a client that asks for a topic a moment after its
    creation on a freshly started broker otherwise logs "not found in cluster metadata" for seconds.
    """
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, settings.partitions, 1)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (described,) = await admin.describe_topics([name])
            partitions = described["partitions"]
            if not described["error_code"] and partitions and all(p["leader"] >= 0 for p in partitions):
                return
            await asyncio.sleep(0.1)
        raise SystemExit(f"topic {name} has no leader for every partition 60 s after its creation")
    finally:
        await admin.close()


def metrics_text(port: int) -> str:
    """Return a worker's /metrics page, or "" while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def scrape_ms(port: int) -> float:
    """Fetch a worker's /metrics once, as Prometheus would; return the milliseconds it took."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


class Scraper(threading.Thread):
    """Scrape /metrics every ``every`` seconds until stopped (Prometheus's load); keep each scrape's ms."""

    def __init__(self, ports: list[int], every: float) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.every = every
        self.took: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.took += [scrape_ms(port) for port in self.ports]

    def stop(self) -> list[float]:
        """Stop scraping; return the milliseconds of each scrape made."""
        self._stop_event.set()
        self.join()
        return self.took


async def _resolved_at(settings: Settings, app_id: str, deadline: float) -> float:
    # Ingest commits the raw offsets only after its packs were acknowledged, so once it has committed
    # the raw topic's end every pack is on the re-key topic; the resolver's group (<app id>-resolve)
    # commits a pack only after its states were persisted and published.
    admin = admin_client(settings)
    offsets = AIOKafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False)
    await admin.start()
    await offsets.start()
    try:
        stages = ((f"{app_id}-ingest", settings.events_topic), (f"{app_id}-resolve", f"{app_id}-events-by-member"))
        for group, topic in stages:
            partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
            ends = await offsets.end_offsets(partitions)
            while True:
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                if all(committed[tp].offset >= end for tp, end in ends.items() if end):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{app_id}: group {group} did not reach the end of {topic} in time")
                await asyncio.sleep(0.1)
        return await _last_output_time(settings, offsets)
    finally:
        await offsets.stop()
        await admin.close()


async def _last_output_time(settings: Settings, consumer: AIOKafkaConsumer) -> float:
    # The timestamp of the newest resolved state on the output topic (its create time: when the
    # worker handed it to its producer, by this machine's clock), to the millisecond.
    partitions = [TopicPartition(settings.output_topic, p) for p in range(settings.partitions)]
    consumer.assign(partitions)
    ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end}
    for tp, end in ends.items():
        consumer.seek(tp, end - 1)
    newest: dict[TopicPartition, int] = {}
    while len(newest) < len(ends):
        for tp, batch in (await consumer.getmany(*ends, timeout_ms=1000)).items():
            newest[tp] = max(record.timestamp for record in batch)
    return max(newest.values(), default=0) / 1000


def resolved_at(settings: Settings, app_id: str, timeout: float = 3600) -> float:
    """
    Wait until the workers of ``app_id`` have resolved every event produced so far; return when (epoch s).

    Waiting reads the two consumer groups' committed offsets, so it costs the workers nothing (a
    /metrics poll would: a scrape runs on the worker's event loop). The moment returned is that
    of the newest state on ``settings.output_topic`` (its create time, this machine's clock), so
    neither the commit interval nor the polling makes it late.
    """
    return asyncio.run(_resolved_at(settings, app_id, time.monotonic() + timeout))


async def _groups_stable(settings: Settings, groups: list[str], members: int) -> bool:
    admin = admin_client(settings)
    await admin.start()
    try:
        # One group per request: aiokafka 0.14 fails to parse a response describing several.
        responses = [response for group in groups for response in await admin.describe_consumer_groups([group])]
    finally:
        await admin.close()
    # DescribeGroups: (error, group id, state, protocol type, protocol, members, ...) per group.
    described = [group for response in responses for group in response.groups]
    return len(described) == len(groups) and all(
        group[0] == 0 and group[2] == "Stable" and len(group[5]) == members for group in described
    )


def groups_stable(settings: Settings, app_id: str, members: int) -> bool:
    """Whether each of the worker's four consumer groups is stable with ``members`` members."""
    groups = [app_id, f"{app_id}-ingest", f"{app_id}-resolve", f"{app_id}-correlate"]
    return asyncio.run(_groups_stable(settings, groups, members))


def counter(port: int, name: str) -> float:
    """Return a worker's counter ``name`` summed over its labels (0 while it does not answer)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text(port).splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


def handled(port: int) -> float:
    """Return the events a worker has applied or found duplicate so far (0 while it does not answer)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text(port).splitlines()
        if line.startswith(("statusflow_events_total{", "statusflow_duplicate_events_total{"))
    )


def start_worker(
    settings: Settings, app_id: str, web_port: int, workdir: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``statusflow worker`` for ``settings`` under ``app_id``; its log goes to ``workdir/<app_id>.log``."""
    env = {
        **os.environ,
        **settings.environment(),
        **(extra or {}),
        "STATUSFLOW_APP_ID": app_id,
        "STATUSFLOW_EVENTS_TOPIC": settings.events_topic,
        "STATUSFLOW_OUTPUT_TOPIC": settings.output_topic,
        "STATUSFLOW_DATA_DIR": str(workdir / app_id),
    }
    log = (workdir / f"{app_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "stream", "worker", "--web-port", str(web_port)],
        env=env,
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )


def worker_round(  # noqa: PLR0913 - a benchmark round is described by all of these
    settings: Settings, total: int, app_id: str, web_port: int, workdir: Path, *, extra: dict[str, str] | None = None
) -> float:
    """Run a worker of a fresh app id over ``total`` events; return its steady rate (first handled to last)."""
    process = start_worker(settings, app_id, web_port, workdir, extra)
    try:
        first = last = first_count = 0.0
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            count = handled(web_port)
            now = time.perf_counter()
            if count and not first:
                first, first_count = now, count
            if count >= total:
                last = now
                break
            time.sleep(0.2)
        if not last:
            raise SystemExit(f"worker did not finish; see {workdir / app_id}.log")
        return (total - first_count) / (last - first)
    finally:
        process.terminate()
        process.wait(timeout=60)
