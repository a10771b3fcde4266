"""
End-to-end latency of the worker at a steady rate: produce time to resolved state on the output topic.

    make bench-latency      (or: python bench/latency_bench.py --rate 2000 --seconds 30)

Starts its own broker (deploy/kafka/kafka.sh, port 19632, throw-away data; stopped at the end) and
one ``statusflow worker``, waits until it is ready, then produces ``--rate`` events/s for
``--seconds`` s (after a 5 s warm-up at the same rate, not counted), each event a new member (so
each makes exactly one state on the output topic), and reads the output topic from its end. A
member's latency is from just before its event was handed to the producer to when the consumer
read its state (both clocks of this machine). Meanwhile /metrics is scraped every 15 s as
Prometheus would, and each scrape is timed. Percentiles go to stdout and bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka_runs import ROOT, broker, start_worker

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.topics import ensure_topics

PORT = 19632
WEB_PORT = 16266
SCRAPE_EVERY = 15.0


def ready(port: int) -> bool:
    """Return whether the worker's /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def scrape(port: int) -> tuple[float, int]:
    """Fetch /metrics once; return the seconds it took and its size."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def produce(producer: AIOKafkaProducer, topic: str, rate: int, total: int, sent: dict[str, float]) -> None:
    """Send ``total`` events, each a new member, ``rate`` a second in 10 ms ticks; note when each was sent."""
    per_tick = max(1, round(rate * 0.01))
    start = time.perf_counter()
    for n in range(0, total, per_tick):
        delay = start + (n / rate) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for i in range(n, min(n + per_tick, total)):
            member = f"lat-{i:07d}"
            value = orjson.dumps(
                {"member_id": member, "event_id": "e", "source": "smpp", "status": "DELIVRD", "occurred_at": 1}
            )
            sent[member] = time.perf_counter()
            await producer.send(topic, value, key=member.encode())
    await producer.flush()


async def consume(consumer: AIOKafkaConsumer, total: int, seen: dict[str, float], within: float) -> None:
    """Read the output topic until ``total`` members have a state; note when each was first read."""
    deadline = time.perf_counter() + within
    while len(seen) < total and time.perf_counter() < deadline:
        batch = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                seen.setdefault(record.key.decode() if record.key else "", now)


async def scrape_every(scrapes: list[float]) -> None:
    """Scrape /metrics every SCRAPE_EVERY seconds, as Prometheus would, until cancelled."""
    while True:
        await asyncio.sleep(SCRAPE_EVERY)
        took, _ = await asyncio.to_thread(scrape, WEB_PORT)
        scrapes.append(took)


async def measure(settings: Settings, rate: int, seconds: float, warmup: float) -> tuple[dict[str, float], list[float]]:
    """Produce at ``rate`` while reading the output; return each counted member's latency and the scrapes."""
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(settings.output_topic, p) for p in range(settings.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)  # resolve the end now, before anything is produced
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    scrapes: list[float] = []
    total = int(rate * (warmup + seconds))
    scraper = asyncio.create_task(scrape_every(scrapes))
    try:
        await asyncio.gather(
            produce(producer, settings.events_topic, rate, total, sent),
            consume(consumer, total, seen, warmup + seconds + 120),
        )
    finally:
        scraper.cancel()
        await producer.stop()
        await consumer.stop()
    missing = total - len(seen)
    if missing:
        raise SystemExit(f"{missing} members never reached the output topic")
    counted_from = int(rate * warmup)
    latencies = {m: seen[m] - sent[m] for m in sent if int(m[4:]) >= counted_from}
    return latencies, scrapes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument(
        "--batch-window", help="STATUSFLOW_BATCH_WINDOW for the worker (its take_events window; default 0.05 s)"
    )
    args = parser.parse_args()
    extra = {"STATUSFLOW_BATCH_WINDOW": args.batch_window} if args.batch_window else {}
    workdir = Path(tempfile.mkdtemp(prefix="statusflow-latency-"))
    settings = Settings(
        broker=f"127.0.0.1:{args.port}", events_topic="bench.message-events", output_topic="bench.status"
    )
    with broker(args.port, workdir / "kafka"):
        asyncio.run(ensure_topics(settings))
        worker = start_worker(settings, "latency", WEB_PORT, workdir, extra)
        try:
            deadline = time.monotonic() + 300
            while not ready(WEB_PORT):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit(f"the worker did not become ready; see {workdir}/latency.log")
                time.sleep(0.2)
            latencies, scrapes = asyncio.run(measure(settings, args.rate, args.seconds, args.warmup))
            idle_scrapes = [scrape(WEB_PORT)[0] for _ in range(5)]
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    values = [v * 1000 for v in latencies.values()]
    figures = {
        "events": len(values),
        "rate": args.rate,
        "batch_window": args.batch_window,
        "p50_ms": percentile(values, 0.50),
        "p95_ms": percentile(values, 0.95),
        "p99_ms": percentile(values, 0.99),
        "max_ms": max(values),
        "mean_ms": statistics.fmean(values),
        "scrapes_under_load_ms": [s * 1000 for s in scrapes],
        "scrapes_idle_ms": [s * 1000 for s in idle_scrapes],
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "latency.json").write_text(json.dumps(figures, indent=2))
    window = args.batch_window or "0.05 (default)"
    print(
        f"\n{len(values):,} events at {args.rate:,}/s, each a new member, one worker, batch window {window} s, "
        f"/metrics scraped every {SCRAPE_EVERY:.0f} s"
    )
    print(
        f"  produce -> state on the output topic: p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms"
    )
    under_load = ", ".join(f"{s:.1f}" for s in figures["scrapes_under_load_ms"])
    idle = ", ".join(f"{s:.1f}" for s in figures["scrapes_idle_ms"])
    print(f"  /metrics scrape: under load {under_load} ms; after the run {idle} ms", file=sys.stdout)


if __name__ == "__main__":
    main()
