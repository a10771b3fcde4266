"""
Benchmark `statusflow resolve` against a bare orjson + dict loop on the same file, same run.

    make bench-resolve            (or: python bench/resolve_bench.py --rounds 5)

Both run as fresh subprocesses, interleaved round by round so machine noise hits both alike;
medians and the ratio go to stdout and bench/results/resolve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("STATUSFLOW_CACHE", Path.home() / ".cache" / "statusflow")) / "bench"

BASELINE = """
import sys, orjson
latest = {}
with open(sys.argv[1], "rb") as f:
    for line in f:
        event = orjson.loads(line)
        latest[event["member_id"]] = event
print(len(latest), file=sys.stderr)
"""


def dataset(members: int, events: int) -> Path:
    path = CACHE / f"resolve-{members}x{events}.jsonl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with path.with_suffix(".tmp").open("wb") as out:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "stream",
                    "generate",
                    "--members",
                    str(members),
                    "--events",
                    str(events),
                    "--seed",
                    "7",
                ],
                stdout=out,
                check=True,
                cwd=ROOT,
            )
        path.with_suffix(".tmp").rename(path)
    return path


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = dataset(args.members, args.events)
    total = args.members * args.events
    commands = {
        "baseline (orjson + dict)": [sys.executable, "-c", BASELINE, str(path)],
        "statusflow resolve": [sys.executable, "-m", "stream", "resolve", "--no-progress", str(path)],
        "statusflow resolve --jobs 1": [
            sys.executable, "-m", "stream", "resolve", "--no-progress", "--jobs", "1", str(path),
        ],
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(args.rounds):
        for name, command in commands.items():
            times[name].append(timed(command))
            print(f"round {round_ + 1}: {name}: {times[name][-1]:.2f} s", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rates = {name: total / seconds for name, seconds in medians.items()}
    baseline = rates["baseline (orjson + dict)"]
    ratios = {name: rate / baseline for name, rate in rates.items() if name.startswith("statusflow")}
    ratio = ratios["statusflow resolve"]
    result = {
        "events": total,
        "members": args.members,
        "rounds": args.rounds,
        "seconds": times,
        "median_events_per_second": rates,
        "ratio": ratio,
        "ratios": ratios,
        "cpus": os.cpu_count(),
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "resolve.json").write_text(json.dumps(result, indent=2))
    print(f"\n{total:,} events, {args.members:,} members, median of {args.rounds} rounds")
    for name, rate in rates.items():
        print(f"  {name:<28} {medians[name]:6.2f} s  {rate:>10,.0f} events/s")
    for name, value in ratios.items():
        print(f"  ratio ({name} / baseline): {value:.2f}")


if __name__ == "__main__":
    main()
