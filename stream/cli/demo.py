"""
``statusflow demo``: the main job on the embedded default, end to end, in one command.

Starts the local Apache Kafka (deploy/kafka/kafka.sh) unless STATUSFLOW_BROKER names one, starts
a worker, replays the bundled sample stream (deploy/sample/, every source, some bad records; Twilio,
SES and Postmark bodies as those providers send them, naming no member, and the dispatch records
that name it), and prints each resolved status change and dead letter as the worker publishes it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "sample"
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("demo", help="local Kafka + worker + bundled sample stream, shown live")
    parser.add_argument("--quiet-seconds", type=float, default=8.0, help="stop after this long without new output")
    parser.add_argument("--follow", action="store_true", help="keep showing changes until Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="leave Kafka and the worker running afterwards")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when every sample member was resolved."""
    started_kafka = False
    if not os.environ.get("STATUSFLOW_BROKER"):
        subprocess.run([str(KAFKA_SH), "start"], check=True)
        started_kafka = True
    # A namespace per run: the demo shows changes, and a second run on the same topics would
    # (rightly) find every sample event a duplicate and publish nothing.
    run_id = time.strftime("demo-%Y%m%d-%H%M%S")
    settings = Settings.from_env(
        app_id=f"statusflow-{run_id}",
        events_topic=f"{run_id}.message-events",
        sendgrid_topic=f"{run_id}.message-events.sendgrid",
        output_topic=f"{run_id}.campaign-member-status",
        dlq_topic=f"{run_id}.message-events.dlq",
        dispatches_topic=f"{run_id}.message-dispatches",
        # Fresh topics make aiokafka warn while their metadata settles; the demo shows errors only.
        log_level=os.environ.get("STATUSFLOW_LOG_LEVEL", "error"),
    )
    env = {**os.environ, **settings.environment()}
    worker = subprocess.Popen([sys.executable, "-m", "stream", "worker"], env=env)
    try:
        print(
            f"statusflow demo: worker pid {worker.pid}, metrics on http://{settings.web_host}:{settings.web_port}/metrics"
        )
        print(f"statusflow demo: output topic {settings.output_topic}, dead letters {settings.dlq_topic}\n")
        return asyncio.run(_show(settings, args))
    except KeyboardInterrupt:
        return 0
    finally:
        if not args.keep:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
            if started_kafka:
                subprocess.run([str(KAFKA_SH), "stop"], check=False)


async def _show(settings: Settings, args: argparse.Namespace) -> int:
    # Fresh topics take a moment to get leaders; aiokafka logs each retry it then makes (even as
    # errors). The demo's own consumer retries until they settle, so those lines are noise here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    await ensure_topics(settings)
    envelopes = [line for line in (SAMPLE / "events.jsonl").read_bytes().splitlines() if line.strip()]
    bodies = [line for line in (SAMPLE / "sendgrid.jsonl").read_bytes().splitlines() if line.strip()]
    natives = {name: _lines(SAMPLE / file) for name, file in NATIVE.items()}
    consumer = AIOKafkaConsumer(
        settings.output_topic, settings.dlq_topic, **kafka_client_options(settings), auto_offset_reset="earliest"
    )
    await consumer.start()
    replay = asyncio.create_task(_replay(settings, envelopes, bodies, natives))
    members: set[str] = set()
    dead = 0
    last = time.monotonic()
    try:
        while args.follow or time.monotonic() - last < args.quiet_seconds or not members:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    last = time.monotonic()
                    if record.topic == settings.dlq_topic:
                        dead += 1
                        print(_dead_letter_line(orjson.loads(record.value)))
                    else:
                        state = orjson.loads(record.value)
                        members.add(state["member_id"])
                        print(_state_line(state))
    finally:
        await consumer.stop()
        await replay
    print(f"\n{len(members)} members resolved, {dead} dead letters.")
    return 0 if members else 1


# Provider bodies as the providers send them, naming no member: deploy/sample/dispatches.jsonl does.
NATIVE = {"twilio": "twilio.txt", "ses": "ses.jsonl", "postmark": "postmark.jsonl"}
_DISPATCH_WAVE = 3  # the statuses of the waves before wait for their dispatch records (README, "Dispatch records")


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


async def _replay(
    settings: Settings,
    envelopes: list[bytes],
    bodies: list[bytes],
    natives: dict[str, list[bytes]],
    waves: int = 6,
) -> None:
    # In waves, as a live feed would arrive: members visibly move through their statuses.
    native = ", ".join(f"{len(lines)} {name}" for name, lines in natives.items())
    print(
        f"replaying {len(envelopes)} envelope records, {len(bodies)} SendGrid bodies and {native} bodies "
        f"in {waves} waves; their dispatch records in wave {_DISPATCH_WAVE + 1}...\n"
    )
    for wave in range(waves):
        await produce_lines(settings, settings.events_topic, envelopes[wave::waves], member_key)
        await produce_lines(settings, settings.sendgrid_topic, bodies[wave::waves], lambda _: None)
        for name, lines in natives.items():
            await produce_lines(settings, settings.raw_topic(name), lines[wave::waves], lambda _: None)
        if wave == _DISPATCH_WAVE:
            await produce_lines(
                settings, settings.dispatches_topic, _lines(SAMPLE / "dispatches.jsonl"), lambda _: None
            )
        await asyncio.sleep(1.5)


def _state_line(state: dict[str, Any]) -> str:
    status = state["status"]
    channels = " ".join(f"{name}={c['shortcode']}" for name, c in state["channels"].items())
    final = "final" if state["final"] else "in transit"
    return (
        f"{state['member_id']:<10} {status['code']:>4} {status['shortcode']:<24} {status['range']:<22} "
        f"{final:<10} events={state['events']:<2} {channels}"
    )


def _dead_letter_line(letter: dict[str, Any]) -> str:
    error = letter["error"]
    raw = letter.get("raw", letter.get("raw_base64", ""))
    return f"DEAD LETTER {error['reason']:<16} {error['message'][:70]:<70} <- {raw[:40]!r}"
