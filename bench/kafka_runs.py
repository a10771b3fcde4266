"""
What the Kafka benchmarks share: a throw-away broker, the aiokafka pass-through baseline, a worker run.

Used by bench/worker_bench.py and bench/peers_bench.py (run as scripts: ``bench/`` is on their
``sys.path``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
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
    """Create one topic with the worker's partition count (the broker creates no topic by itself)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, settings.partitions, 1)])
    finally:
        await admin.close()


def metrics_text(port: int) -> str:
    """Return a worker's /metrics page, or "" while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


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
