"""
Benchmark the statusflow worker against its peers on the same job, broker and input, interleaved.

    make bench-peers        (or: python bench/peers_bench.py --events 200000 --rounds 3)

Starts its own broker (deploy/kafka/kafka.sh, port 19592, throw-away data; stopped at the end),
produces the synthetic stream (``stream.synthetic``) once to an 8-partition raw topic keyed by
member, then per round, one after the other:

1. the plain aiokafka pass-through (consume, produce each record: moving bytes, no job);
2. ``statusflow worker`` (fresh app id): ingest, re-key, resolve, changelog, state out;
3. Quix Streams (``bench/quix_job.py``, in a virtualenv the bench makes once under
   ~/.cache/statusflow/quix-venv): JSON in, group by member, per-member state in RocksDB with its
   changelog, the same core (dedupe by event id included), the state produced on change.

Each rate is steady state (first record handled to the last). Medians, the ratios
statusflow/aiokafka and statusflow/Quix go to stdout and bench/results/peers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import orjson
import scratch
from kafka_runs import ROOT, broker, create_topic, passthrough, worker_round
from scratch import scratch_dir

from stream.config import Settings
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.synthetic import stream

PORT = 19592
QUIX = "quixstreams==3.28.1"
QUIX_VENV = Path.home() / ".cache" / "statusflow" / "quix-venv"
AIOKAFKA, WORKER, QUIX_SIDE = "aiokafka pass-through", "statusflow worker", "Quix Streams 3.28.1"


def quix_python() -> Path:
    """Return the Quix virtualenv's python, making the virtualenv the first time (cached after)."""
    python = QUIX_VENV / "bin" / "python"
    marker = QUIX_VENV / f".{QUIX}"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", QUIX, "orjson", "msgspec"], check=True)
        marker.touch()
    return python


def quix_round(python: Path, settings: Settings, total: int, group: str, workdir: Path) -> float:
    """Run the Quix job over ``total`` events with a fresh consumer group; return its steady rate."""
    done = subprocess.run(
        [
            str(python),
            str(ROOT / "bench" / "quix_job.py"),
            "--broker",
            settings.broker,
            "--input",
            settings.events_topic,
            "--output",
            f"{settings.output_topic}.quix",
            "--group",
            group,
            "--state-dir",
            str(workdir / group),
            "--total",
            str(total),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
        timeout=1800,
        cwd=ROOT,
    )
    (workdir / f"{group}.log").write_bytes(done.stderr)
    if done.returncode:
        raise SystemExit(f"the Quix job failed ({done.returncode}); see {workdir / group}.log")
    times = json.loads(done.stdout.splitlines()[-1])
    print(
        f"  Quix: last record {times['last'] - times['first']:.2f} s after the first, run returned after "
        f"{times['end'] - times['first']:.2f} s",
        file=sys.stderr,
    )
    return float((total - 1) / (times["end"] - times["first"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    python = quix_python()
    workdir = scratch_dir("statusflow-peers-")
    settings = Settings(
        broker=f"127.0.0.1:{args.port}", events_topic="bench.message-events", output_topic="bench.status"
    )
    rates: dict[str, list[float]] = {AIOKAFKA: [], WORKER: [], QUIX_SIDE: []}
    with broker(args.port, workdir / "kafka"):
        lines = [orjson.dumps(e) for e in stream(args.members, args.events // args.members, seed=3)][: args.events]
        asyncio.run(ensure_topics(settings))
        asyncio.run(produce_lines(settings, settings.events_topic, lines, member_key))
        for name in (f"{settings.output_topic}.baseline", f"{settings.output_topic}.quix"):
            asyncio.run(create_topic(settings, name))
        total = len(lines)
        for round_ in range(args.rounds):
            rates[AIOKAFKA].append(asyncio.run(passthrough(settings, total, f"baseline-{round_}")))
            rates[WORKER].append(worker_round(settings, total, f"peers-{round_}", 16166 + round_, workdir))
            rates[QUIX_SIDE].append(quix_round(python, settings, total, f"quix-{round_}", workdir))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratios = {
        "statusflow/aiokafka": medians[WORKER] / medians[AIOKAFKA],
        "statusflow/Quix": medians[WORKER] / medians[QUIX_SIDE],
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "peers.json").write_text(
        json.dumps({"events": total, "rounds": rates, "medians": medians, "ratios": ratios}, indent=2)
    )
    print(f"\n{total:,} events, {settings.partitions} partitions, one process each, median of {args.rounds} rounds")
    for name, rate in medians.items():
        print(f"  {name:<26} {rate:>10,.0f} events/s  (rounds: {', '.join(f'{r:,.0f}' for r in rates[name])})")
    for name, ratio in ratios.items():
        print(f"  {name}: {ratio:.2f}")


if __name__ == "__main__":
    scratch.run(main)
