"""
The member-state stores at scale: memory vs RocksDB, through the worker, same broker, same input.

    make bench-state         (or: python bench/state_bench.py --members 1000000 --events-per-member 3)

Starts its own local broker (deploy/kafka/kafka.sh, port 29392, throw-away data) and produces the
stream once. Then per store (interleaved when --rounds > 1), with a fresh app id:

- throughput: a worker resolves the whole stream; events/s from its first applied event to the
  last (steady state: start-up and group join excluded);
- memory: the worker's resident set (VmRSS) once it has resolved everything, and bytes per member;
- restart: the worker is killed with -9 and started again (same static instance id), one new
  event is produced; seconds from the restart until /readyz is 200 and until that event is applied.

Medians go to stdout and bench/results/state.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from kafka_runs import start_worker
from restart_bench import applied, ready, wait

from stream.config import Settings
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.synthetic import stream

ROOT = Path(__file__).resolve().parents[1]
PORT = 29392
WEB_PORT = 17166


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start(settings: Settings, store: str, app_id: str, workdir: Path) -> subprocess.Popen[bytes]:
    extra = {"STATUSFLOW_INSTANCE_ID": f"{app_id}-0", "STATUSFLOW_STORE": store}
    return start_worker(settings, app_id, WEB_PORT, workdir, extra)


def store_round(  # noqa: PLR0913, PLR0917 - a round is described by all of these
    settings: Settings, store: str, total: int, members: int, app_id: str, workdir: Path
) -> dict[str, float]:
    worker = start(settings, store, app_id, workdir)
    wait(lambda: applied(WEB_PORT) > 0, "the first event", timeout=600)
    first = time.monotonic()
    seen = applied(WEB_PORT)
    wait(lambda: applied(WEB_PORT) >= total, "the stream", timeout=3600)
    rate = (total - seen) / (time.monotonic() - first)
    resident = rss_bytes(worker.pid)
    worker.kill()
    worker.wait()
    restarted = time.monotonic()
    worker = start(settings, store, app_id, workdir)
    try:
        probe = orjson.dumps(
            {"member_id": f"probe-{app_id}", "event_id": "p", "source": "smpp", "status": "DELIVRD", "occurred_at": 1}
        )
        asyncio.run(produce_lines(settings, settings.events_topic, [probe], member_key))
        ready_at = wait(lambda: ready(WEB_PORT), "/readyz", timeout=1200)
        applied_at = wait(lambda: applied(WEB_PORT) >= 1, "the new event", timeout=1200)
    finally:
        worker.terminate()
        worker.wait(timeout=120)
    return {
        "events_per_s": rate,
        "rss_mib": resident / 2**20,
        "bytes_per_member": resident / members,
        "restart_ready_s": ready_at - restarted,
        "restart_applied_s": applied_at - restarted,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--events-per-member", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stores", default="memory://,rocksdb://")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="statusflow-state-"))
    env = {**os.environ, "STATUSFLOW_KAFKA_PORT": str(PORT), "STATUSFLOW_KAFKA_DATA": str(workdir / "kafka")}
    kafka = ROOT / "deploy" / "kafka" / "kafka.sh"
    subprocess.run([str(kafka), "start"], env=env, check=True)
    stores = args.stores.split(",")
    figures: dict[str, list[dict[str, float]]] = {store: [] for store in stores}
    try:
        settings = Settings(broker=f"127.0.0.1:{PORT}", events_topic="bench.events", output_topic="bench.status")
        asyncio.run(ensure_topics(settings))
        lines = [orjson.dumps(e) for e in stream(args.members, args.events_per_member, seed=11)]
        asyncio.run(produce_lines(settings, settings.events_topic, lines, member_key))
        for round_ in range(args.rounds):
            for store in stores:
                app_id = f"state-{store.split(':')[0]}-{round_}"
                result = store_round(settings, store, len(lines), args.members, app_id, workdir)
                figures[store].append(result)
                print(f"round {round_ + 1} {store}: {json.dumps(result)}", file=sys.stderr)
    finally:
        subprocess.run([str(kafka), "stop"], env=env, check=False)
    medians = {
        store: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for store, runs in figures.items()
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "state.json").write_text(
        json.dumps({"members": args.members, "events": len(lines), "rounds": figures, "medians": medians}, indent=2)
    )
    print(f"\n{args.members:,} members, {len(lines):,} events, median of {args.rounds} round(s)")
    for store, median in medians.items():
        print(
            f"  {store:<12} {median['events_per_s']:>9,.0f} events/s  RSS {median['rss_mib']:,.0f} MiB "
            f"({median['bytes_per_member']:,.0f} B/member)  restart: ready {median['restart_ready_s']:.1f} s, "
            f"next event applied {median['restart_applied_s']:.1f} s"
        )
    if "memory://" in medians and "rocksdb://" in medians:
        ratio = medians["rocksdb://"]["events_per_s"] / medians["memory://"]["events_per_s"]
        print(f"  throughput rocksdb/memory: {ratio:.2f}")


if __name__ == "__main__":
    main()
