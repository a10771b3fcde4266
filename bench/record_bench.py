"""
Measure the largest changelog record one member's state makes, by the number of its events.

    make bench-record        (or: python bench/record_bench.py --events 2000)

One member's events (``stream.synthetic.member_story``: one provider's story, ids as the
synthetic stream makes them, ``m0000001-<n>``; and the same events with 36-character UUID ids, as
providers such as SendGrid and Twilio send), folded through ``precedence.resolve`` one by one as
the worker applies them. Each changed state is one changelog record (``records.encode_state``,
compressed as it is written); the largest is reported, with the in-memory size of the final state's
ids. It uses only what every statusflow version has, so the same script measures an older
checkout: ``PYTHONPATH=<old checkout> python bench/record_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

from stream import records
from stream.codec import event_from_envelope
from stream.domain.precedence import resolve
from stream.synthetic import member_story

ROOT = Path(__file__).resolve().parents[1]


def largest_record(envelopes: list[dict[str, Any]]) -> tuple[int, int]:
    """Return the largest record written while applying ``envelopes``, and the final one's size."""
    largest = final = 0
    state = None
    for envelope in envelopes:
        after = resolve(state, event_from_envelope(envelope))
        if after is not state:
            final = len(records.encode_state(after))
            largest = max(largest, final)
        state = after
    return largest, final


def ids_in_memory(envelopes: list[dict[str, Any]]) -> int:
    """Return the bytes the final state's id digest holds in memory (the set and its strings, or an int)."""
    state = None
    for envelope in envelopes:
        state = resolve(state, event_from_envelope(envelope))
    held = getattr(state, "seen", None)
    if held is None:  # before bounded states: a frozenset of every id
        held = state.event_ids  # type: ignore[union-attr]
    if isinstance(held, int):
        return sys.getsizeof(held)
    return sys.getsizeof(held) + sum(sys.getsizeof(i) for i in held)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[10, 100, 2_000, 25_000])
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    import stream.records as module  # noqa: PLC0415 - to name the checkout measured

    print(f"changelog format {module.STATE_FORMAT} ({Path(module.__file__).resolve().parents[1]})")
    print(f"{'events':>8} {'ids':>10} {'largest record':>15} {'final record':>13} {'ids in memory':>14}")
    results = []
    for n in args.events:
        story = member_story(random.Random(args.seed), "m0000001", n)
        rng = random.Random(args.seed)
        with_uuids = [{**e, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))} for e in story]
        for kind, envelopes in (("synthetic", story), ("uuid", with_uuids)):
            largest, final = largest_record(envelopes)
            memory = ids_in_memory(envelopes)
            results.append({"events": n, "ids": kind, "largest": largest, "final": final, "ids_memory": memory})
            print(f"{n:>8,} {kind:>10} {largest:>13,} B {final:>11,} B {memory:>12,} B")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / f"record-format-{module.STATE_FORMAT}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
