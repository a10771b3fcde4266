"""``statusflow resolve``: resolve JSON-lines files offline, with the same core as the worker."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

import orjson

from stream.codec import encode_state
from stream.domain.model import MemberState
from stream.resolver import (
    FORMATS,
    DeadLetter,
    DispatchJoin,
    Observer,
    Sinks,
    Tally,
    describe,
    record_of,
    resolve_lines,
)
from stream.shards import resolve_in_processes, usable_cpus

_PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # below this, starting processes costs more than it saves


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("resolve", help="resolve events from JSON-lines files (or stdin) to member states")
    parser.add_argument("files", nargs="*", default=["-"], metavar="FILE", help="JSON-lines input; '-' is stdin")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="envelope",
        help="envelope lines, or one provider webhook body per line (see README, Providers)",
    )
    parser.add_argument(
        "--dispatches",
        metavar="FILE",
        help="dispatch records (schemas/dispatch.v1.json, JSON lines), read first: they give the member to "
        "provider events that name none; a status no dispatch claims is dead-lettered (unmatched_message)",
    )
    parser.add_argument("--changes", action="store_true", help="write every state change, not the final states")
    parser.add_argument(
        "--dlq",
        metavar="FILE",
        help="write dead letters (JSON lines, with the records) here; default: one line each on stderr",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if anything was dead-lettered")
    parser.add_argument("--metrics", metavar="FILE", help="write Prometheus text-format metrics of the run here")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="processes, split by member (default: one per CPU for files of 16 MB or more; "
        "always 1 with stdin, --changes, --metrics or a provider --format)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the files; print states (or changes), dead letters and a summary."""
    for name in args.files:
        if name != "-" and not os.path.isfile(name):
            print(f"statusflow resolve: no such file: {name}", file=sys.stderr)
            return 2
    if args.dispatches is not None and not os.path.isfile(args.dispatches):
        print(f"statusflow resolve: no such file: {args.dispatches}", file=sys.stderr)
        return 2
    if args.dispatches is not None and args.format == "envelope":
        print(
            "statusflow resolve: --dispatches needs a provider --format (envelopes name their member)", file=sys.stderr
        )
        return 2
    if args.jobs < 0:
        print(f"statusflow resolve: --jobs must be 0 (automatic) or more, got {args.jobs}", file=sys.stderr)
        return 2
    observer, write_metrics = _metrics(args.metrics)
    out = sys.stdout.buffer
    with ExitStack() as stack:
        dlq: IO[bytes] | None = stack.enter_context(open(args.dlq, "wb")) if args.dlq else None
        jobs = _jobs(args)
        if jobs > 1:
            progress = not args.no_progress and sys.stderr.isatty() and _size(args.files) >= _PROGRESS_MIN_BYTES
            states, dead, tally, members = resolve_in_processes(args.files, jobs, progress=progress)
            for document in dead:
                _write_dead(dlq, document)
            out.writelines(encoded + b"\n" for encoded in states)
        else:
            tally, members = _resolve_here(args, out, dlq, observer, stack)
    out.flush()
    write_metrics()
    summary = ", ".join(f"{key.replace('_', '-')} {value}" for key, value in tally.as_dict().items())
    print(f"statusflow resolve: {summary}, members {members}", file=sys.stderr)
    return 1 if args.strict and tally.dead_lettered else 0


def _write_dead(dlq: IO[bytes] | None, document: bytes) -> None:
    # Without --dlq a person reads stderr: where and why, not the record (it may be a whole body
    # full of addresses); with --dlq the file keeps everything.
    if dlq is None:
        print(f"statusflow resolve: dead letter: {describe(orjson.loads(document))}", file=sys.stderr)
    else:
        dlq.write(document + b"\n")


def _resolve_here(
    args: argparse.Namespace, out: IO[bytes], dlq: IO[bytes] | None, observer: Observer | None, stack: ExitStack
) -> tuple[Tally, int]:
    states: dict[str, MemberState] = {}
    tally = Tally()

    def on_dead(letter: DeadLetter) -> None:
        _write_dead(dlq, orjson.dumps(letter.document()))

    def on_change(state: MemberState) -> None:
        out.write(encode_state(state) + b"\n")

    correlated = getattr(observer, "correlated", None)  # the metrics' per-provider join counters
    sinks = Sinks(on_dead, on_change if args.changes else None, observer, correlated)
    lines = _lines(args.files, stack, progress=not args.no_progress)
    if args.dispatches is None:
        resolve_lines(lines, args.format, states, tally, sinks)
    else:
        join = DispatchJoin(args.format, states, tally, sinks)
        join.dispatches(_lines([args.dispatches], stack, progress=False))
        join.lines(lines)
        join.finish()
    if not args.changes:
        for member_id in sorted(states):
            out.write(encode_state(states[member_id]) + b"\n")
    return tally, len(states)


def _jobs(args: argparse.Namespace) -> int:
    if "-" in args.files or args.changes or args.metrics or args.format != "envelope":
        return 1  # one stream of changes, one registry, one reader of stdin; provider bodies hold many members
    if args.jobs:
        return int(args.jobs)
    return usable_cpus() if _size(args.files) >= _PARALLEL_MIN_BYTES else 1


def _size(files: list[str]) -> int:
    return sum(os.path.getsize(name) for name in files if name != "-")


def _lines(files: list[str], stack: ExitStack, *, progress: bool) -> Iterator[tuple[str, int, bytes]]:
    for name in files:
        handle: IO[bytes] = sys.stdin.buffer if name == "-" else stack.enter_context(open(name, "rb"))  # noqa: SIM115
        lines: Iterator[bytes] = iter(handle)
        if progress and name != "-" and sys.stderr.isatty() and os.path.getsize(name) >= _PROGRESS_MIN_BYTES:
            lines = _with_progress(lines, name)
        for lineno, line in enumerate(lines, 1):
            record = record_of(line)
            if record is not None:
                yield name, lineno, record


def _with_progress(lines: Iterator[bytes], name: str) -> Iterator[bytes]:
    from tqdm import tqdm  # noqa: PLC0415 - only needed on a terminal

    with tqdm(
        total=os.path.getsize(name), unit="B", unit_scale=True, desc=os.path.basename(name), file=sys.stderr
    ) as bar:
        for line in lines:
            bar.update(len(line))
            yield line


def _metrics(path: str | None) -> tuple[Observer | None, Any]:
    if path is None:
        return None, lambda: None
    from prometheus_client import CollectorRegistry, write_to_textfile  # noqa: PLC0415

    from stream.metrics import Metrics  # noqa: PLC0415 - keeps the plain run free of metrics cost

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    return metrics, lambda: write_to_textfile(path, registry)
