"""
Benchmark the webhook receiver against a bare aiohttp handler, on loopback, in the same run.

Starts its own local broker (deploy/kafka/kafka.sh, port 29192, throw-away data; or --broker),
then two servers as processes of their own: `statusflow webhooks` (Mailgun's signature checked,
each body written to Kafka with acks=all and answered only once acknowledged) and a bare aiohttp
app whose handler reads the body and answers 200. One aiohttp client in this process posts signed
Mailgun webhooks (a fresh token each) with --concurrency requests in flight, for --seconds per
side per round, the sides interleaved round by round. Reports requests/s and p99 latency per side,
their medians over the rounds, and the ratio of the medians (target: at least 0.5).

    python bench/webhooks_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import scratch
from scratch import scratch_dir

from stream.config import Settings
from stream.kafka.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-signing-key"
BARE = """
import sys
from aiohttp import web

async def handle(request):
    await request.read()
    return web.json_response({"status": "ok"})

async def health(request):
    return web.json_response({"status": "ok"})

app = web.Application()
app.router.add_post("/webhooks/{format}", handle)
app.router.add_get("/healthz", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def body() -> bytes:
    """Return a Mailgun webhook body signed now, with a fresh token (as Mailgun sends each request)."""
    stamp = str(int(time.time()))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    data = {
        "event": "delivered",
        "timestamp": time.time(),
        "id": token[:22],
        "recipient": "someone@example.com",
        "message": {"headers": {"message-id": f"{token[:16]}@example.com"}},
        "user-variables": {"member_id": f"cm-{token[:6]}"},
        "delivery-status": {"code": 250, "message": "OK", "attempt-no": 1},
    }
    return json.dumps(
        {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": data}
    ).encode()


async def load(url: str, seconds: float, concurrency: int) -> tuple[float, float, int]:
    """Post for ``seconds`` with ``concurrency`` in flight; return requests/s, p99 latency (s), non-200 answers."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            data = body()
            started = time.perf_counter()
            async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))], failures


def wait_healthy(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Poll /healthz until it answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server on port {port} did not come up") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="load per side per round")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--port", type=int, default=29192, help="port of the broker this benchmark starts")
    parser.add_argument("--broker", help="use this broker instead of starting one")
    args = parser.parse_args()
    workdir = scratch_dir("statusflow-webhooks-bench-")
    kafka_env = {**os.environ, "STATUSFLOW_KAFKA_PORT": str(args.port), "STATUSFLOW_KAFKA_DATA": str(workdir / "kafka")}
    kafka = ROOT / "deploy" / "kafka" / "kafka.sh"
    if not args.broker:
        subprocess.run([str(kafka), "start"], env=kafka_env, check=True)
    broker = args.broker or f"127.0.0.1:{args.port}"
    settings = Settings(broker=broker, events_topic="bench-webhooks.message-events")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(ensure_topics(settings))
        ports = {"bare aiohttp handler": 18181, "statusflow webhooks": 18182}
        env = {
            **os.environ,
            "STATUSFLOW_BROKER": broker,
            "STATUSFLOW_EVENTS_TOPIC": settings.events_topic,
            "STATUSFLOW_MAILGUN_SIGNING_KEY": KEY,
        }
        log = (workdir / "webhooks.log").open("wb")
        servers.append(subprocess.Popen([sys.executable, "-c", BARE, str(ports["bare aiohttp handler"])]))
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "stream", "webhooks", "--port", str(ports["statusflow webhooks"])],
                env=env,
                stderr=log,
            )
        )
        for server, port in zip(servers, ports.values(), strict=True):
            wait_healthy(port, server)
        urls = {name: f"http://127.0.0.1:{port}/webhooks/mailgun" for name, port in ports.items()}
        for url in urls.values():  # warm-up: connections, the producer's metadata, leaders of a new topic
            asyncio.run(load(url, 3.0, args.concurrency))
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            for name, url in urls.items():
                results[name].append(asyncio.run(load(url, args.seconds, args.concurrency)))
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{n} {r[-1][0]:,.0f}/s p99 {r[-1][1] * 1000:.1f} ms" for n, r in results.items()),
                file=sys.stderr,
            )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        if not args.broker:
            subprocess.run([str(kafka), "stop"], env=kafka_env, check=False)
    medians = {
        name: {
            "requests_per_s": statistics.median(r[0] for r in rows),
            "p99_ms": statistics.median(r[1] for r in rows) * 1000,
            "failures": sum(r[2] for r in rows),
        }
        for name, rows in results.items()
    }
    ratio = medians["statusflow webhooks"]["requests_per_s"] / medians["bare aiohttp handler"]["requests_per_s"]
    per_round = [
        s[0] / b[0] for s, b in zip(results["statusflow webhooks"], results["bare aiohttp handler"], strict=True)
    ]
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "webhooks.json").write_text(
        json.dumps(
            {"rounds": results, "medians": medians, "ratio": ratio, "per_round": per_round, "args": vars(args)},
            indent=2,
        )
    )
    print(
        f"\nsigned Mailgun webhooks, {args.concurrency} in flight, {args.seconds:g} s per side, median of {args.rounds} rounds"
    )
    for name, values in medians.items():
        print(
            f"  {name:<22} {values['requests_per_s']:>8,.0f} requests/s  p99 {values['p99_ms']:6.1f} ms"
            f"  non-200: {values['failures']}"
        )
    print(f"  ratio of the medians (receiver / bare handler): {ratio:.2f}")
    # Each round measures both sides minutes apart at most; on a shared machine whose load drifts,
    # the median of the per-round ratios is the steadier figure of the two.
    print(
        f"  median of the per-round ratios: {statistics.median(per_round):.2f}"
        f"  (rounds: {', '.join(f'{r:.2f}' for r in per_round)})"
    )


if __name__ == "__main__":
    scratch.run(main)
