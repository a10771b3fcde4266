"""
The statusflow job written for Quix Streams, for bench/peers_bench.py (runs in its own virtualenv).

JSON in; group by member (a repartition topic, as statusflow re-keys); per member a state in Quix's
store (RocksDB, with its changelog topic) holding the member's changelog record; the same core
(``codec.event_from_envelope``, ``precedence.resolve``, whose digest dedupes by event id); the
public state produced on change. Quix's defaults otherwise (commit every 5 s, at-least-once).
Prints the time of the first record and the end (the run returned: the last checkpoint committed)
as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from quixstreams import Application, State  # type: ignore[import-not-found]

from stream import records
from stream.codec import encode_state, event_from_envelope
from stream.domain.precedence import resolve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--total", type=int, required=True)
    args = parser.parse_args()
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    progress = {"seen": 0, "first": 0.0, "last": 0.0}

    def resolve_event(value: dict[str, Any], state: State) -> bytes | None:
        if not progress["seen"]:
            progress["first"] = time.perf_counter()
        progress["seen"] += 1
        if progress["seen"] >= args.total:
            progress["last"] = time.perf_counter()
            app.stop()  # after this record: Quix then commits its last checkpoint
        held = state.get_bytes("member")
        before = None if held is None else records.decode_state(held)
        after = resolve(before, event_from_envelope(value))
        if after is before:
            return None  # a duplicate: nothing to store or produce
        state.set_bytes("member", records.encode_state(after))
        return encode_state(after)

    events = app.dataframe(app.topic(args.input, value_deserializer="json"))
    events = events.group_by("member_id")
    states = events.apply(resolve_event, stateful=True)
    states = states.filter(lambda state: state is not None)
    states.to_topic(app.topic(args.output, value_serializer="bytes"))
    app.run()
    end = time.perf_counter()
    print(json.dumps({**progress, "end": end}))


if __name__ == "__main__":
    main()
