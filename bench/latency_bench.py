"""
End-to-end latency at a steady rate: produce time to resolved state on the output topic.

    make bench-latency      (or: python bench/latency_bench.py --rate 2000 --seconds 30 --rounds 3)

Starts its own broker (deploy/kafka/kafka.sh, port 19632, throw-away data; stopped at the end). Per
round, one after the other: the baseline, bench/relay.py (two plain aiokafka hops in one process,
each batch written with acks=all and acknowledged before the next read, no decoding and no state),
then one ``statusflow worker``, ready before its run. Each gets ``--rate`` events/s for
``--seconds`` s (after a ``--warmup`` at the same rate, not counted), each event a new member (so
each makes exactly one state on the output topic), and its output topic is read from its end. A
member's latency is from just before its event was handed to the producer to when the consumer
read its state (both clocks of this machine). During the worker's runs /metrics is scraped every
15 s as Prometheus would, each scrape timed, and the re-key and changelog topics are read too: their
record timestamps split the worker's latency by hop. Medians of the rounds and the worker/relay
ratios go to stdout, every round to bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import scratch
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka_runs import ROOT, broker, create_topic, start_worker
from scratch import scratch_dir

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.topics import ensure_topics
from stream.records import decode_pack

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


# The hops a member's event takes, each named by the topic whose record timestamp (the writer's
# clock when it appended the record) marks the hop's end: re-keyed by ingest, persisted, published.
HOPS: tuple[str, ...] = ("by_member", "changelog", "output")


@dataclass
class Run:
    """One run's members and what was noted of each: sent (both clocks), read, and hop timestamps."""

    total: int  # events, each a member of its own
    prefix: str = field(default_factory=lambda: f"lat-{time.monotonic_ns()}-")  # members new to this run
    sent: dict[str, float] = field(default_factory=dict)  # perf_counter, just before the producer has it
    sent_at: dict[str, float] = field(default_factory=dict)  # wall clock, for the record timestamps
    seen: dict[str, float] = field(default_factory=dict)  # perf_counter, first read on the output topic
    stamps: dict[str, dict[str, float]] = field(default_factory=lambda: {hop: {} for hop in HOPS})


async def produce(producer: AIOKafkaProducer, topic: str, rate: int, run: Run) -> None:
    """Send the run's events, each a new member, ``rate`` a second in 10 ms ticks; note when each was sent."""
    per_tick = max(1, round(rate * 0.01))
    start = time.perf_counter()
    total = run.total
    for n in range(0, total, per_tick):
        delay = start + (n / rate) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for i in range(n, min(n + per_tick, total)):
            member = f"{run.prefix}{i:07d}"
            value = orjson.dumps(
                {"member_id": member, "event_id": "e", "source": "smpp", "status": "DELIVRD", "occurred_at": 1}
            )
            run.sent[member] = time.perf_counter()
            run.sent_at[member] = time.time()
            await producer.send(topic, value, key=member.encode())
    await producer.flush()


async def consume(consumer: AIOKafkaConsumer, settings: Settings, output: str, run: Run, within: float) -> None:
    """
    Read ``output`` until every member of the run has a state there; note when each was first read.

    The re-key and changelog topics are read too, for the time each member's event reached them.
    """
    hop_of = {settings.by_member_topic: "by_member", settings.changelog_topic: "changelog", output: "output"}
    deadline = time.perf_counter() + within
    while len(run.seen) < run.total and time.perf_counter() < deadline:
        batch = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for tp, records in batch.items():
            hop = run.stamps[hop_of[tp.topic]]
            for record in records:
                stamp = record.timestamp / 1000
                if hop_of[tp.topic] == "by_member":
                    for event in decode_pack(record.value):
                        hop.setdefault(event.member_id, stamp)
                    continue
                member = record.key.decode() if record.key else ""
                if not member.startswith(run.prefix):
                    continue  # another run's
                hop.setdefault(member, stamp)
                if tp.topic == output:
                    run.seen.setdefault(member, now)


async def scrape_every(scrapes: list[float] | None) -> None:
    """Scrape /metrics every SCRAPE_EVERY seconds, as Prometheus would, until cancelled (None: no worker)."""
    while scrapes is not None:
        await asyncio.sleep(SCRAPE_EVERY)
        took, _ = await asyncio.to_thread(scrape, WEB_PORT)
        scrapes.append(took)


async def measure(  # noqa: PLR0913, PLR0917 - a run is described by all of these
    settings: Settings, source: str, output: str, rate: int, seconds: float, warmup: float
) -> tuple[dict[str, float], list[float], dict[str, float]]:
    """
    Produce to ``source`` at ``rate`` while reading ``output``; return each counted member's latency.

    With the worker's topics as ``source`` and ``output``, the scrapes and the hops are measured too.
    """
    worker = output == settings.output_topic
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False)
    await consumer.start()
    topics = (output, settings.by_member_topic, settings.changelog_topic) if worker else (output,)
    partitions = [TopicPartition(topic, p) for topic in topics for p in range(settings.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)  # resolve the end now, before anything is produced
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    run = Run(total=int(rate * (warmup + seconds)))
    scrapes: list[float] = []
    scraper = asyncio.create_task(scrape_every(scrapes if worker else None))
    try:
        await asyncio.gather(
            produce(producer, source, rate, run),
            consume(consumer, settings, output, run, warmup + seconds + 120),
        )
    finally:
        scraper.cancel()
        await producer.stop()
        await consumer.stop()
    missing = run.total - len(run.seen)
    if missing:
        raise SystemExit(f"{missing} members never reached {output}")
    counted_from = int(rate * warmup)
    counted = [m for m in run.sent if int(m.removeprefix(run.prefix)) >= counted_from]
    latencies = {m: run.seen[m] - run.sent[m] for m in counted}
    return latencies, scrapes, hop_times(counted, run) if worker else {}


def hop_times(counted: list[str], run: Run) -> dict[str, float]:
    """
    Return the median time of each hop, in ms: produce -> re-keyed -> persisted -> published.

    From record timestamps (milliseconds, the worker's clock, which is this machine's): the writer
    stamps a record when it appends it to a batch, so each hop ends when its write began.
    """
    medians: dict[str, float] = {}
    start = run.sent_at
    for hop in HOPS:
        ends = run.stamps[hop]
        medians[hop] = statistics.median((ends[m] - start[m]) * 1000 for m in counted if m in ends and m in start)
        start = ends
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--rounds", type=int, default=3, help="relay and worker runs, interleaved")
    args = parser.parse_args()
    workdir = scratch_dir("statusflow-latency-")
    settings = Settings(
        broker=f"127.0.0.1:{args.port}",
        app_id="latency",
        events_topic="bench.message-events",
        output_topic="bench.status",
    )
    runs: dict[str, list[dict[str, Any]]] = {"relay": [], "worker": []}
    with broker(args.port, workdir / "kafka"):
        asyncio.run(ensure_topics(settings))
        for round_ in range(args.rounds):
            runs["relay"].append(relay_run(settings, args, round_))
            runs["worker"].append(worker_run(settings, args, workdir))
    medians = {
        side: {key: statistics.median(run[key] for run in rounds) for key in PERCENTILES}
        for side, rounds in runs.items()
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "latency.json").write_text(
        json.dumps({"rate": args.rate, "seconds": args.seconds, "runs": runs, "medians": medians}, indent=2)
    )
    print(
        f"\n{args.rate:,} events/s for {args.seconds:.0f} s, each a new member; {args.rounds} round(s), "
        "medians of the rounds; /metrics scraped every 15 s during the worker's runs"
    )
    for side, figures in medians.items():
        print(
            f"  {side:<7} produce -> output read: p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
            f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms"
        )
    ratios = ", ".join(f"{key[:-3]} {medians['worker'][key] / medians['relay'][key]:.2f}" for key in PERCENTILES)
    print(f"  worker / relay: {ratios}")
    for run in runs["worker"]:
        hops = run["hop_medians_ms"]
        under_load = ", ".join(f"{s:.1f}" for s in run["scrapes_under_load_ms"])
        idle = ", ".join(f"{s:.1f}" for s in run["scrapes_idle_ms"])
        print(
            f"  worker hops (medians): produce -> re-keyed {hops['by_member']:.1f} ms, -> changelog write "
            f"{hops['changelog']:.1f} ms, -> output write {hops['output']:.1f} ms; /metrics under load {under_load} ms, "
            f"after {idle} ms"
        )


PERCENTILES = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def figures_of(latencies: dict[str, float]) -> dict[str, Any]:
    """Return the percentiles of a run's latencies, in ms."""
    values = [v * 1000 for v in latencies.values()]
    return {
        "events": len(values),
        "p50_ms": percentile(values, 0.50),
        "p95_ms": percentile(values, 0.95),
        "p99_ms": percentile(values, 0.99),
        "max_ms": max(values),
    }


def relay_run(settings: Settings, args: argparse.Namespace, round_: int) -> dict[str, Any]:
    """Measure the baseline: bench/relay.py's two plain hops, on topics of its own."""
    source, output = f"bench.relay-{round_}", f"bench.relay-{round_}.out"
    for topic in (source, f"{source}.hop", output):
        asyncio.run(create_topic(settings, topic))
    relay = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "relay.py"), settings.broker, source, output], cwd=ROOT
    )
    try:
        latencies, _, _ = asyncio.run(measure(settings, source, output, args.rate, args.seconds, args.warmup))
    finally:
        relay.terminate()
        relay.wait(timeout=60)
    return figures_of(latencies)


def worker_run(settings: Settings, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Measure one worker, ready before the run, on the worker's topics (read from their ends)."""
    worker = start_worker(settings, settings.app_id, WEB_PORT, workdir)
    try:
        deadline = time.monotonic() + 300
        while not ready(WEB_PORT):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the worker did not become ready; see {workdir}/latency.log")
            time.sleep(0.2)
        latencies, scrapes, hops = asyncio.run(
            measure(settings, settings.events_topic, settings.output_topic, args.rate, args.seconds, args.warmup)
        )
        idle_scrapes = [scrape(WEB_PORT)[0] for _ in range(5)]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return {
        **figures_of(latencies),
        "scrapes_under_load_ms": [s * 1000 for s in scrapes],
        "scrapes_idle_ms": [s * 1000 for s in idle_scrapes],
        "hop_medians_ms": hops,
    }


if __name__ == "__main__":
    scratch.run(main)
