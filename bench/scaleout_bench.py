"""
Scale-out: one app id, its 8 partitions shared by 1 or 2 worker processes, same broker, same input.

    make bench-scaleout      (or: python bench/scaleout_bench.py --events 300000 --members 30000 --rounds 3)

Starts its own local broker (deploy/kafka/kafka.sh, port 19712, throw-away data) and makes the
stream once (the same records for every run). Then per round, interleaved: 1 worker, then 2
workers, each run with a fresh app id, raw topic and output topic (8 partitions each), a data
directory per worker and a distinct STATUSFLOW_INSTANCE_ID, the default store unless --store.

The workers start on an empty raw topic and the input is produced only once every worker is in
the group: /readyz is 200 on each, holding a share of the partitions that add up to all 8, and
each of the worker's consumer groups is stable with that many members. (Two workers took
13-16 s to settle here, one holding every partition meanwhile; with the input there beforehand, a
40,000-event trial was over before the second worker got its share.) The rate is the
aggregate steady rate: events applied across all workers (the sum of their
``statusflow_events_total``) per second, from the end of the production (the producer shares the
two cores; what the workers applied meanwhile is left out) to the newest state on the run's
output topic (``kafka_runs.resolved_at``: no /metrics polling meanwhile). The load average at the
start and end of each run is recorded, so a reader sees whether the machine was quiet.

Medians, the 2/1 ratio and each run go to stdout and bench/results/scaleout.json. The machine has
two cores, shared by the broker and the bench: the ratio is reported as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import scratch
from kafka_runs import ROOT, broker, groups_stable, resolved_at, start_worker
from restart_bench import applied, wait
from scratch import scratch_dir

from stream.config import Settings
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.synthetic import stream

PORT = 19712
WEB_PORT = 17366  # worker i serves /metrics and /readyz on WEB_PORT + i


def readiness(port: int) -> dict[str, Any] | None:
    """Return a worker's /readyz document when it is ready (200), else None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            document: dict[str, Any] = json.loads(response.read())
            return document
    except (OSError, urllib.error.HTTPError, ValueError):
        return None


def settled(ports: list[int], partitions: int) -> bool:
    """Whether every worker is ready and holds a share, the shares making up all the partitions."""
    verdicts = [readiness(port) for port in ports]
    held = [verdict.get("partitions", 0) if verdict else 0 for verdict in verdicts]
    return all(held) and sum(held) == partitions


def scale_round(  # noqa: PLR0913, PLR0917 - a round is described by all of these
    settings: Settings, lines: list[bytes], workers: int, app_id: str, store: str, workdir: Path
) -> dict[str, Any]:
    """Run ``workers`` workers of a fresh app id over the stream; return the aggregate steady rate and more."""
    load_start = os.getloadavg()[0]
    run = replace(settings, app_id=app_id, events_topic=f"bench.events.{app_id}", output_topic=f"bench.status.{app_id}")
    asyncio.run(ensure_topics(run))
    ports = [WEB_PORT + number for number in range(workers)]
    processes = []
    for number, port in enumerate(ports):
        home = workdir / f"worker-{number}"  # a data directory per worker, as a pod or a host has
        home.mkdir(exist_ok=True)
        extra = {"STATUSFLOW_INSTANCE_ID": f"{app_id}-{number}", "STATUSFLOW_STORE": store}
        processes.append(start_worker(run, app_id, port, home, extra))
    try:
        started = time.monotonic()
        wait(lambda: settled(ports, run.partitions), "every worker ready with a share", timeout=600)
        wait(lambda: groups_stable(run, app_id, workers), "every group stable", timeout=600)
        joined = time.monotonic() - started
        asyncio.run(produce_lines(run, run.events_topic, lines, member_key))
        wait(lambda: sum(applied(port) for port in ports) > 0, "the first event", timeout=600)
        first = time.time()
        before = [applied(port) for port in ports]
        end = resolved_at(run, app_id)
        after = [applied(port) for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)
    if sum(after) < len(lines):
        raise SystemExit(f"{app_id}: {sum(after):,.0f} of {len(lines):,} events applied; see {workdir}/worker-*/")
    return {
        "events_per_s": (sum(after) - sum(before)) / (end - first),
        "window_s": end - first,
        "applied_before_window": sum(before),
        "applied_in_window_per_worker": [a - b for a, b in zip(after, before, strict=True)],
        "join_s": joined,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--members", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", default="rocksdb://", help="the workers' STATUSFLOW_STORE")
    parser.add_argument("--port", type=int, default=PORT, help="the benchmark's own broker")
    args = parser.parse_args()
    workdir = scratch_dir("statusflow-scaleout-")
    counts = (1, 2)
    runs: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
    load_start = os.getloadavg()
    with broker(args.port, workdir / "kafka"):
        settings = Settings(broker=f"127.0.0.1:{args.port}", events_topic="bench.events", output_topic="bench.status")
        lines = [orjson.dumps(e) for e in stream(args.members, args.events // args.members, seed=13)][: args.events]
        for round_ in range(args.rounds):
            for count in counts:
                result = scale_round(settings, lines, count, f"scale-{count}w-{round_}", args.store, workdir)
                runs[count].append(result)
                print(f"round {round_ + 1}, {count} worker(s): {json.dumps(result)}", file=sys.stderr)
    load_end = os.getloadavg()
    medians = {count: statistics.median(run["events_per_s"] for run in runs[count]) for count in counts}
    per_round = [two["events_per_s"] / one["events_per_s"] for one, two in zip(runs[1], runs[2], strict=True)]
    figures = {
        "events": len(lines),
        "members": args.members,
        "partitions": settings.partitions,
        "store": args.store,
        "cpus": os.cpu_count(),
        "rounds": {f"{count} worker(s)": runs[count] for count in counts},
        "medians": {f"{count} worker(s)": medians[count] for count in counts},
        "ratio": medians[2] / medians[1],
        "ratio_per_round": per_round,
        "load_average_start": load_start,
        "load_average_end": load_end,
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "scaleout.json").write_text(json.dumps(figures, indent=2))
    print(
        f"\n{len(lines):,} events over {args.members:,} members, {settings.partitions} partitions, {args.store}, "
        f"{os.cpu_count()} CPUs, median of {args.rounds} round(s), aggregate steady rate"
    )
    for count in counts:
        rates = ", ".join(f"{run['events_per_s']:,.0f}" for run in runs[count])
        print(f"  {count} worker(s): {medians[count]:>9,.0f} events/s  (rounds: {rates})")
    print(f"  ratio 2/1: {figures['ratio']:.2f}  (per round: {', '.join(f'{r:.2f}' for r in per_round)})")
    print(f"  load average (1, 5, 15 min): start {load_start}, end {load_end}")


if __name__ == "__main__":
    scratch.run(main)
