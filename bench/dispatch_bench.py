"""
Benchmark the dispatch join offline: the same Twilio callbacks, members known upfront or found by dispatch records.

    make bench-dispatch            (or: python bench/dispatch_bench.py --messages 50000 --rounds 3)

Baseline: `statusflow resolve --format twilio` on callbacks that carry `member_id` (as a callback
URL's query parameter passed on would). Measured: the same callbacks without it, with
`--dispatches` and one dispatch record per message (read first, as the command does). Both run as
fresh subprocesses, interleaved round by round; medians and the ratio go to stdout and
bench/results/dispatch.json. The two outputs must be byte-identical (checked every round).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("STATUSFLOW_CACHE", Path.home() / ".cache" / "statusflow")) / "bench"
T0 = 1_735_689_600
FLOWS = (
    ("queued", "sent", "delivered"),
    ("queued", "sent", "undelivered"),
    ("queued", "failed"),
    ("sent", "delivered", "read"),
)


def dataset(messages: int) -> tuple[Path, Path, Path]:
    """Write (with members, without members, dispatches) once per size; return their paths."""
    known, bare, dispatches = (CACHE / f"dispatch-{messages}-{name}" for name in ("known.txt", "bare.txt", "d.jsonl"))
    if dispatches.exists():
        return known, bare, dispatches
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    lines: list[tuple[str, dict[str, str]]] = []
    records = []
    for n in range(messages):
        sid = f"SM{n:032x}"
        member = f"cm-{rng.randrange(messages // 2)}"
        records.append(orjson.dumps({"provider": "twilio", "message_id": sid, "member_id": member, "occurred_at": T0}))
        for k, status in enumerate(rng.choice(FLOWS)):
            fields = {"MessageSid": sid, "MessageStatus": status, "To": "+4512345678", "received_at": str(T0 + n + k)}
            lines.append((member, fields))
    rng.shuffle(lines)
    known.write_text("".join(urllib.parse.urlencode({**f, "member_id": m}) + "\n" for m, f in lines))
    bare.write_text("".join(urllib.parse.urlencode(f) + "\n" for _, f in lines))
    dispatches.write_bytes(b"".join(r + b"\n" for r in records))
    return known, bare, dispatches


def timed(args: list[str]) -> tuple[float, bytes]:
    """Run statusflow with ``args``; return seconds and its stdout."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stream", *args], capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    """Run the rounds and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    known, bare, dispatches = dataset(options.messages)
    statuses = sum(1 for _ in known.open())
    base: list[float] = []
    joined: list[float] = []
    for _ in range(options.rounds):
        seconds, expected = timed(["resolve", "--format", "twilio", str(known)])
        base.append(seconds)
        seconds, got = timed(["resolve", "--format", "twilio", "--dispatches", str(dispatches), str(bare)])
        joined.append(seconds)
        if got != expected:
            raise SystemExit("dispatch_bench: the join gave other states than members known upfront")
    result = {
        "messages": options.messages,
        "statuses": statuses,
        "members known upfront (s)": base,
        "with --dispatches (s)": joined,
        "median known (s)": statistics.median(base),
        "median joined (s)": statistics.median(joined),
        "ratio (known / joined)": statistics.median(base) / statistics.median(joined),
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "dispatch.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
