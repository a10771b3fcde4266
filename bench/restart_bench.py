"""
Measure how long a worker killed with -9 takes to resolve again: dynamic vs static group membership.

    make bench-restart       (or: python bench/restart_bench.py --rounds 3)

Starts its own local broker (deploy/kafka/kafka.sh, port 29292, throw-away data) and produces a
stream once. Per round and mode (interleaved): a worker of a fresh app id resolves the stream, is
killed with -9 and started again at once (with the same STATUSFLOW_INSTANCE_ID in the static
mode); one new event is produced; the figures are the seconds from the restart until /readyz
answers 200 and until that event is applied. Production timeouts (session 10 s, heartbeat 2 s).
Medians go to stdout and bench/results/restart.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import scratch
from scratch import scratch_dir

from stream.config import Settings
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.synthetic import stream

ROOT = Path(__file__).resolve().parents[1]
PORT = 29292


def applied(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("statusflow_events_total{")
    )


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def wait(condition: Callable[[], bool], what: str, timeout: float = 300) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic()


def start(settings: Settings, app_id: str, instance_id: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STATUSFLOW_BROKER": settings.broker,
        "STATUSFLOW_APP_ID": app_id,
        "STATUSFLOW_EVENTS_TOPIC": settings.events_topic,
        "STATUSFLOW_OUTPUT_TOPIC": settings.output_topic,
        "STATUSFLOW_DATA_DIR": str(workdir / app_id),
        "STATUSFLOW_INSTANCE_ID": instance_id,
    }
    log = (workdir / f"{app_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "stream", "worker", "--web-port", str(port)], env=env, stdout=log, stderr=log, cwd=ROOT
    )


def restart_round(settings: Settings, total: int, app_id: str, instance_id: str, workdir: Path) -> tuple[float, float]:
    port = 17066
    worker = start(settings, app_id, instance_id, port, workdir)
    wait(lambda: applied(port) >= total, "the stream")
    worker.kill()
    worker.wait()
    restarted = time.monotonic()
    worker = start(settings, app_id, instance_id, port, workdir)
    try:
        probe = orjson.dumps(
            {"member_id": f"probe-{app_id}", "event_id": "p", "source": "smpp", "status": "DELIVRD", "occurred_at": 1}
        )
        asyncio.run(produce_lines(settings, settings.events_topic, [probe], member_key))
        ready_at = wait(lambda: ready(port), "/readyz")
        applied_at = wait(lambda: applied(port) >= 1, "the new event")
        return ready_at - restarted, applied_at - restarted
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = scratch_dir("statusflow-restart-")
    env = {**os.environ, "STATUSFLOW_KAFKA_PORT": str(PORT), "STATUSFLOW_KAFKA_DATA": str(workdir / "kafka")}
    kafka = ROOT / "deploy" / "kafka" / "kafka.sh"
    subprocess.run([str(kafka), "start"], env=env, check=True)
    try:
        settings = Settings(broker=f"127.0.0.1:{PORT}", events_topic="bench.events", output_topic="bench.status")
        asyncio.run(ensure_topics(settings))
        lines = [orjson.dumps(e) for e in stream(args.members, args.events // args.members, seed=5)][: args.events]
        asyncio.run(produce_lines(settings, settings.events_topic, lines, member_key))
        figures: dict[str, list[tuple[float, float]]] = {
            "dynamic membership": [],
            "static (STATUSFLOW_INSTANCE_ID)": [],
        }
        for round_ in range(args.rounds):
            for mode, instance in (("dynamic membership", ""), ("static (STATUSFLOW_INSTANCE_ID)", f"w{round_}")):
                app_id = f"restart-{'s' if instance else 'd'}{round_}"
                figures[mode].append(restart_round(settings, len(lines), app_id, instance, workdir))
                print(
                    f"round {round_ + 1} {mode}: ready {figures[mode][-1][0]:.1f} s, applied {figures[mode][-1][1]:.1f} s",
                    file=sys.stderr,
                )
    finally:
        subprocess.run([str(kafka), "stop"], env=env, check=False)
    medians = {
        mode: {"ready": statistics.median(r for r, _ in runs), "applied": statistics.median(a for _, a in runs)}
        for mode, runs in figures.items()
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "restart.json").write_text(
        json.dumps({"rounds": figures, "medians": medians}, indent=2)
    )
    print(f"\nkill -9 and restart, {len(lines):,} events resolved before, median of {args.rounds} rounds")
    for mode, median in medians.items():
        print(f"  {mode:<32} ready after {median['ready']:.1f} s, next event applied after {median['applied']:.1f} s")


if __name__ == "__main__":
    scratch.run(main)
