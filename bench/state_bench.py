"""
The member-state stores at scale: memory vs RocksDB, through the worker, same broker, same input.

    make bench-state         (or: python bench/state_bench.py --members 1000000 --events-per-member 3)

Starts its own local broker (deploy/kafka/kafka.sh, port 29392, throw-away data) and produces the
stream once. Then per store (interleaved when --rounds > 1), with a fresh app id:

- throughput: a worker resolves the whole stream; events/s from its first applied event to the
  newest state on the output topic (steady state: start-up and group join excluded; the end is
  read off Kafka, ``kafka_runs.resolved_at``, so nothing scrapes the worker meanwhile);
- memory: the worker's resident set (VmRSS) once it has resolved everything, and bytes per member;
  and the size of its data directory (RocksDB's files, SST and write-ahead log; ~0 for memory://);
- /metrics: 7 scrapes once it holds every member (the worker otherwise idle), each timed;
- restart: the worker is killed with -9 and started again (same static instance id), one new
  event is produced; seconds from the restart until /readyz is 200 and until that event is applied,
  and the changelog records it restored;
- scraped (unless --scrape-every 0): right before or after the run above (alternating by round),
  the same store resolves the stream again under another fresh app id while a thread scrapes
  /metrics every --scrape-every seconds (15, as Prometheus would), from the first applied event to
  the end; its events/s against the unscraped run's, and each scrape's time.

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
import time
from pathlib import Path
from typing import Any

import orjson
import scratch
from kafka_runs import Scraper, counter, resolved_at, scrape_ms, start_worker
from restart_bench import applied, ready, wait
from scratch import scratch_dir

from stream.config import Settings
from stream.kafka.producer import member_key, produce_lines
from stream.kafka.topics import ensure_topics
from stream.synthetic import stream

ROOT = Path(__file__).resolve().parents[1]
PORT = 29392
WEB_PORT = 17166
SCRAPES = 7


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def disk_bytes(directory: Path) -> int:
    """Return the bytes of the files under ``directory`` (a worker's data directory: RocksDB's files)."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def start(settings: Settings, store: str, app_id: str, workdir: Path) -> subprocess.Popen[bytes]:
    extra = {"STATUSFLOW_INSTANCE_ID": f"{app_id}-0", "STATUSFLOW_STORE": store}
    return start_worker(settings, app_id, WEB_PORT, workdir, extra)


def throughput(  # noqa: PLR0913, PLR0917 - a phase is described by all of these
    settings: Settings, store: str, total: int, app_id: str, workdir: Path, scrape_every: float = 0
) -> tuple[subprocess.Popen[bytes], float, list[float]]:
    """
    Start a worker of a fresh app id and let it resolve the stream; return it, its events/s and the scrapes' ms.

    With ``scrape_every``, /metrics is scraped that often from the first applied event to the end.
    """
    worker = start(settings, store, app_id, workdir)
    wait(lambda: applied(WEB_PORT) > 0, "the first event", timeout=600)
    first = time.time()
    seen = applied(WEB_PORT)
    scraper = Scraper([WEB_PORT], scrape_every) if scrape_every else None
    if scraper:
        scraper.start()
    end = resolved_at(settings, app_id)
    scrapes = scraper.stop() if scraper else []
    if applied(WEB_PORT) < total:
        raise SystemExit(f"{app_id}: not every event applied; see {workdir / app_id}.log")
    return worker, (total - seen) / (end - first), scrapes


def store_round(  # noqa: PLR0913, PLR0917 - a round is described by all of these
    settings: Settings, store: str, total: int, members: int, app_id: str, workdir: Path
) -> dict[str, Any]:
    worker, rate, _ = throughput(settings, store, total, app_id, workdir)
    resident = rss_bytes(worker.pid)
    disk = disk_bytes(workdir / app_id)
    scrapes = [scrape_ms(WEB_PORT) for _ in range(SCRAPES)]
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
        restored = counter(WEB_PORT, "statusflow_restored_records_total")
    finally:
        worker.terminate()
        worker.wait(timeout=120)
    return {
        "events_per_s": rate,
        "rss_mib": resident / 2**20,
        "bytes_per_member": resident / members,
        "disk_mib": disk / 2**20,
        "restart_ready_s": ready_at - restarted,
        "restart_applied_s": applied_at - restarted,
        "restored_records": restored,
        "scrape_median_ms": statistics.median(scrapes),
        "scrape_max_ms": max(scrapes),
        "scrapes_ms": scrapes,
    }


def scraped_round(  # noqa: PLR0913, PLR0917 - a round is described by all of these
    settings: Settings, store: str, total: int, app_id: str, workdir: Path, every: float
) -> dict[str, Any]:
    worker, rate, scrapes = throughput(settings, store, total, app_id, workdir, scrape_every=every)
    worker.terminate()
    worker.wait(timeout=120)
    return {"events_per_s": rate, "scrapes_ms": scrapes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--events-per-member", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stores", default="memory://,rocksdb://")
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=15,
        help="also run each store with /metrics scraped every S seconds during its throughput phase (0: not)",
    )
    args = parser.parse_args()
    workdir = scratch_dir("statusflow-state-")
    env = {**os.environ, "STATUSFLOW_KAFKA_PORT": str(PORT), "STATUSFLOW_KAFKA_DATA": str(workdir / "kafka")}
    kafka = ROOT / "deploy" / "kafka" / "kafka.sh"
    subprocess.run([str(kafka), "start"], env=env, check=True)
    stores = args.stores.split(",")
    figures: dict[str, list[dict[str, Any]]] = {store: [] for store in stores}
    scraped: dict[str, list[dict[str, Any]]] = {store: [] for store in stores}
    load_start = os.getloadavg()
    try:
        settings = Settings(broker=f"127.0.0.1:{PORT}", events_topic="bench.events", output_topic="bench.status")
        asyncio.run(ensure_topics(settings))
        lines = [orjson.dumps(e) for e in stream(args.members, args.events_per_member, seed=11)]
        asyncio.run(produce_lines(settings, settings.events_topic, lines, member_key))
        for round_ in range(args.rounds):
            for store in stores:
                app_id = f"state-{store.split(':')[0]}-{round_}"
                # Both variants of a store back to back, which one first alternating by round.
                variants = ["plain", "scraped"] if args.scrape_every else ["plain"]
                for variant in variants if round_ % 2 == 0 else reversed(variants):
                    if variant == "plain":
                        result = store_round(settings, store, len(lines), args.members, app_id, workdir)
                        figures[store].append(result)
                    else:
                        result = scraped_round(
                            settings, store, len(lines), f"{app_id}-scraped", workdir, args.scrape_every
                        )
                        scraped[store].append(result)
                    print(f"round {round_ + 1} {store} {variant}: {json.dumps(result)}", file=sys.stderr)
    finally:
        subprocess.run([str(kafka), "stop"], env=env, check=False)
    load_end = os.getloadavg()
    medians = {
        store: {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "scrapes_ms"}
        for store, runs in figures.items()
    }
    for store, runs in scraped.items():
        if runs:
            medians[store]["events_per_s_scraped"] = statistics.median(run["events_per_s"] for run in runs)
            medians[store]["scraped_ratio"] = medians[store]["events_per_s_scraped"] / medians[store]["events_per_s"]
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "state.json").write_text(
        json.dumps(
            {
                "members": args.members,
                "events": len(lines),
                "rounds": figures,
                "scraped_every_s": args.scrape_every,
                "scraped_rounds": scraped,
                "medians": medians,
                "load_average_start": load_start,
                "load_average_end": load_end,
            },
            indent=2,
        )
    )
    report(args, len(lines), medians, scraped)
    print(f"  load average (1, 5, 15 min): start {load_start}, end {load_end}")


def report(
    args: argparse.Namespace,
    events: int,
    medians: dict[str, dict[str, float]],
    scraped: dict[str, list[dict[str, Any]]],
) -> None:
    print(f"\n{args.members:,} members, {events:,} events, median of {args.rounds} round(s)")
    for store, median in medians.items():
        print(
            f"  {store:<12} {median['events_per_s']:>9,.0f} events/s  RSS {median['rss_mib']:,.0f} MiB "
            f"({median['bytes_per_member']:,.0f} B/member), disk {median['disk_mib']:,.0f} MiB  "
            f"restart: ready {median['restart_ready_s']:.1f} s, next event applied {median['restart_applied_s']:.1f} s "
            f"({median['restored_records']:,.0f} changelog records restored)"
        )
    for store, median in medians.items():
        print(
            f"  {store:<12} /metrics holding {args.members:,} members: median {median['scrape_median_ms']:.1f} ms, "
            f"max {median['scrape_max_ms']:.1f} ms ({SCRAPES} scrapes)"
        )
        if "events_per_s_scraped" in median:
            during = ", ".join(f"{ms:.0f}" for run in scraped[store] for ms in run["scrapes_ms"])
            print(
                f"  {store:<12} scraped every {args.scrape_every:g} s: {median['events_per_s_scraped']:,.0f} events/s "
                f"against {median['events_per_s']:,.0f} unscraped, ratio {median['scraped_ratio']:.2f} "
                f"(scrapes during the run: {during} ms)"
            )
    if "memory://" in medians and "rocksdb://" in medians:
        ratio = medians["rocksdb://"]["events_per_s"] / medians["memory://"]["events_per_s"]
        print(f"  throughput rocksdb/memory: {ratio:.2f}")


if __name__ == "__main__":
    scratch.run(main)
