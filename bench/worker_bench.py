"""
Benchmark the streaming worker against a plain aiokafka pass-through on the same broker, same run.

    make bench-worker        (or: python bench/worker_bench.py --events 200000 --rounds 3)

Starts its own local broker (deploy/kafka/kafka.sh, port 29092, throw-away data), produces the
stream once into an 8-partition raw topic, then per round:

- baseline: one AIOKafkaConsumer reads every record and produces each to an output topic;
- worker: `statusflow worker` (fresh consumer group) takes the same records end to end (raw topic
  in, re-key, resolve, changelog, resolved state out), read off its own metrics.

Rates are steady state: first record handled to last, so neither side pays for start-up or the
group join. Medians and the ratio go to stdout and bench/results/worker.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson
import scratch
from kafka_runs import ROOT, create_topic, passthrough, worker_round
from scratch import scratch_dir

from stream.config import Secret, Settings
from stream.kafka.acls import acl_commands, worker_acls
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.synthetic import stream

PORT = 29092


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=PORT, help="the benchmark's broker (a secured one on port+20)")
    parser.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="also run the worker over SASL_SSL (SCRAM-SHA-512, ACLs) on a secured broker, interleaved, and "
        "report its ratio to PLAINTEXT",
    )
    args = parser.parse_args()
    workdir = scratch_dir("statusflow-bench-")
    kafka = ROOT / "deploy" / "kafka" / "kafka.sh"
    envs = [{**os.environ, "STATUSFLOW_KAFKA_PORT": str(args.port), "STATUSFLOW_KAFKA_DATA": str(workdir / "kafka")}]
    if args.sasl_ssl:
        secured = workdir / "kafka-secured"
        envs.append({**envs[0], "STATUSFLOW_KAFKA_PORT": str(args.port + 20), "STATUSFLOW_KAFKA_DATA": str(secured)})
        envs[1]["STATUSFLOW_KAFKA_SECURITY"] = "sasl_ssl"
    for env in envs:
        subprocess.run([str(kafka), "start"], env=env, check=True)
    try:
        settings = Settings(
            broker=f"127.0.0.1:{args.port}", events_topic="bench.message-events", output_topic="bench.status"
        )
        lines = [orjson.dumps(e) for e in stream(args.members, args.events // args.members, seed=3)][: args.events]
        sides: dict[str, tuple[Settings, dict[str, str]]] = {"statusflow worker": (settings, {})}
        if args.sasl_ssl:
            sides[SECURED] = secured_side(settings, secured, envs[1], args.rounds)
        for side, _ in sides.values():
            asyncio.run(ensure_topics(side))
            asyncio.run(produce_lines(side, side.events_topic, lines, member_key))
        asyncio.run(create_topic(settings, f"{settings.output_topic}.baseline"))
        total = len(lines)
        rates: dict[str, list[float]] = {"baseline (aiokafka pass-through)": [], **{name: [] for name in sides}}
        for round_ in range(args.rounds):
            rates["baseline (aiokafka pass-through)"].append(
                asyncio.run(passthrough(settings, total, f"baseline-{round_}"))
            )
            for number, (name, (side, extra)) in enumerate(sides.items()):
                port = 16066 + 10 * number + round_
                rates[name].append(worker_round(side, total, f"bench-{round_}", port, workdir, extra=extra))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), file=sys.stderr)
    finally:
        for env in envs:
            subprocess.run([str(kafka), "stop"], env=env, check=False)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratio = medians["statusflow worker"] / medians["baseline (aiokafka pass-through)"]
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "worker.json").write_text(
        json.dumps(
            {"events": total, "partitions": settings.partitions, "rounds": rates, "medians": medians, "ratio": ratio},
            indent=2,
        )
    )
    print(
        f"\n{total:,} events, {settings.partitions} partitions, 1 worker, median of {args.rounds} rounds (steady state)"
    )
    for name, rate in medians.items():
        print(f"  {name:<34} {rate:>10,.0f} events/s")
    print(f"  ratio (worker / baseline): {ratio:.2f}")
    if SECURED in medians:
        per_round = [s / p for s, p in zip(rates[SECURED], rates["statusflow worker"], strict=True)]
        print(f"  ratio (SASL_SSL / PLAINTEXT worker): {medians[SECURED] / medians['statusflow worker']:.2f}", end="")
        print(f"  (rounds: {', '.join(f'{r:.2f}' for r in per_round)})")


SECURED = "statusflow worker over SASL_SSL"


def secured_side(plain: Settings, data: Path, env: dict[str, str], rounds: int) -> tuple[Settings, dict[str, str]]:
    """Return the admin's settings on the secured broker, and the worker's env: user statusflow, its ACLs only."""
    admin = replace(
        plain,
        broker=f"127.0.0.1:{env['STATUSFLOW_KAFKA_PORT']}",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="admin",
        sasl_password=Secret((data / "secrets" / "admin.password").read_text().strip()),
        ssl_cafile=str(data / "tls" / "ca.pem"),
    )
    for round_ in range(rounds):  # the app ids worker_round uses; ACLs name them literally
        for command in acl_commands(worker_acls(replace(admin, app_id=f"bench-{round_}")), "User:statusflow"):
            subprocess.run(
                [str(ROOT / "deploy" / "kafka" / "kafka.sh"), "acl", *command],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
    worker = {
        "STATUSFLOW_SASL_USERNAME": "statusflow",
        "STATUSFLOW_SASL_PASSWORD": "",
        "STATUSFLOW_SASL_PASSWORD_FILE": str(data / "secrets" / "statusflow.password"),
    }
    return admin, worker


if __name__ == "__main__":
    scratch.run(main)
