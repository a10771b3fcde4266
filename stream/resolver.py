"""
The service between raw records and the core: decode, resolve, count, dead-letter.

Both front doors use it: ``statusflow resolve`` over files and the Faust worker over Kafka. It
keeps no state of its own: member states live in whatever mapping the caller passes in (a dict
offline, the worker's changelog-backed partition stores live), so the same code runs in both.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from stream.codec import decode_event, event_from_envelope
from stream.dispatches import (
    Unclaimed,
    claimed_event,
    decode_dispatch,
    dispatch_conflict,
    unclaimed,
    unmatched_error,
)
from stream.domain.correlate import Correlator, Dispatch, Held
from stream.domain.errors import BadEventError
from stream.domain.model import Event, MemberState
from stream.domain.precedence import join_members, merge, resolve
from stream.providers import registry
from stream.providers.base import NoMemberError

FORMATS = registry.FORMATS  # "envelope" and every provider format


class Observer(Protocol):
    """What the resolver reports to (metrics); every method must be cheap."""

    def applied(self, event: Event, before: MemberState | None, after: MemberState) -> None:
        """Report that an event changed a member's state."""

    def duplicate(self, event: Event) -> None:
        """Report an event that had been applied before and changed nothing."""

    def dead_letter(self, error: BadEventError) -> None:
        """Report a record that could not be resolved."""


@dataclass
class Tally:
    """What happened to the records one run read."""

    read: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counts by name."""
        return dict(vars(self))

    def add(self, other: Tally) -> None:
        """Add another run's counts to these (runs over disjoint records)."""
        for name, count in other.as_dict().items():
            setattr(self, name, getattr(self, name) + count)


# A dead letter keeps the whole record up to this size. Beyond it, a prefix, the size and a SHA-256:
# the original still lies at the letter's origin (topic, partition, offset), and a letter must fit
# the dead-letter topic's 1 MB limit even when JSON escaping makes each byte six (NUL -> \u0000).
RAW_KEPT_BYTES = 64 * 1024
RAW_PREFIX_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """
    A record that could not be resolved: its original bytes, why, and where it came from.

    ``raw`` is None for a null record (a Kafka tombstone). For one bad event of a body that holds
    many (a SendGrid body), ``raw`` is that event alone and ``origin`` names its ``index`` in the body.
    """

    raw: bytes | None
    error: BadEventError
    origin: dict[str, Any] = field(default_factory=dict)

    def at(self, **origin: Any) -> DeadLetter:
        """Return this letter with where its record came from (file and line, or topic, partition, offset)."""
        return DeadLetter(self.raw, self.error, {**origin, **self.origin})

    def document(self) -> dict[str, Any]:
        """Return the dead letter as a JSON-ready record (``schemas/dead-letter.v1.json``)."""
        error = {"reason": self.error.reason, "field": self.error.field, "message": self.error.message}
        return {**self.origin, "error": error, **raw_fields(self.raw)}


def describe(document: dict[str, Any]) -> str:
    """Return one line for a person from a dead-letter document: where, what and why, not the bytes."""
    where = ":".join(str(document[key]) for key in _ORIGIN_KEYS if key in document)
    error = document["error"]
    field_ = f" in field '{error['field']}'" if error["field"] else ""
    return f"{where}: {error['reason']}{field_}: {error['message']}"


_ORIGIN_KEYS = ("file", "line", "topic", "partition", "offset", "index")


def raw_fields(raw: bytes | None) -> dict[str, Any]:
    """Return a record's bytes as dead-letter fields: whole when small enough, else prefix, size and digest."""
    if raw is None:
        return {"raw": None}
    if len(raw) <= RAW_KEPT_BYTES:
        return _text_or_base64("raw", raw)
    return {
        **_text_or_base64("raw_prefix", raw[:RAW_PREFIX_BYTES]),
        "raw_size": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _text_or_base64(name: str, data: bytes) -> dict[str, str]:
    try:
        return {name: data.decode()}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode()}


def record_of(line: bytes) -> bytes | None:
    """Return a JSON-lines record: the line without its line end, or None for a blank line (skipped)."""
    return line.rstrip(b"\r\n") if line.strip() else None


def events_of(
    record: bytes | None, record_format: str, known: Mapping[str, Any] | None = None
) -> Iterator[Event | DeadLetter]:
    """
    Decode one record (an envelope line, or a provider's webhook body) into events and dead letters.

    ``known`` holds our fields (``member_id``, ``campaign_id``, ``message_type``) known from outside
    the body (the webhook receiver's ``member_id`` record header): an event that names no member of
    its own is taken to be that member's. Without one it is dead-lettered (``missing_field``).
    """
    for item in items_of(record, record_format, known, hold=False):
        if isinstance(item, Held):  # cannot happen without hold; keeps the types honest
            continue
        yield item


def items_of(
    record: bytes | None, record_format: str, known: Mapping[str, Any] | None = None, *, hold: bool = True
) -> Iterator[Event | DeadLetter | Held[Unclaimed]]:
    """
    Decode one record as ``events_of`` does, but let an event without a member wait for its dispatch.

    With ``hold``, a provider event that names no member (and ``known`` names none either) but
    names its message id is yielded as a status held for the join on (provider, message id)
    (``stream/dispatches.py``), instead of a dead letter.
    """
    if not record:
        what = "a null value (a tombstone)" if record is None else "no bytes"
        yield DeadLetter(record, BadEventError("empty_record", "", f"the record is {what}: no event to resolve"))
        return
    if record_format == "envelope":
        try:
            yield decode_event(record)
        except BadEventError as error:
            yield DeadLetter(record, error)
        return
    source = registry.provider(record_format)
    # A provider whose bodies lack what the receiver knew (Twilio: the time) reads it from there.
    with_context = getattr(source, "envelopes_with_context", None)
    try:
        envelopes = with_context(record, known) if known and with_context else source.envelopes_from_body(record)
    except BadEventError as error:
        yield DeadLetter(record, error)
        return
    member_known = {k: v for k, v in known.items() if k != "received_at"} if known else None
    for index, (event, envelope) in enumerate(envelopes):
        yield _item(record_format, source.NAME, index, event, envelope, member_known, hold=hold)


def _item(  # noqa: PLR0913, PLR0917 - one event of a body, with what decides its fate
    record_format: str,
    name: str,
    index: int,
    event: object,
    envelope: dict[str, Any] | BadEventError,
    known: Mapping[str, Any] | None,
    *,
    hold: bool,
) -> Event | DeadLetter | Held[Unclaimed]:
    if isinstance(envelope, NoMemberError):
        if known and known.get("member_id"):
            envelope = {**{k: v for k, v in known.items() if v not in (None, "")}, **envelope.partial}
        elif hold:
            waiting = unclaimed(record_format, envelope, orjson.dumps(event), {"index": index})
            return waiting if isinstance(waiting, Held) else DeadLetter(orjson.dumps(event), waiting, {"index": index})
    if isinstance(envelope, BadEventError):
        return DeadLetter(orjson.dumps(event), envelope, {"index": index})
    try:
        return event_from_envelope(envelope)
    except BadEventError as error:
        where = BadEventError(error.reason, error.field, f"{error.message} ({name} event {index})")
        return DeadLetter(orjson.dumps(event), where, {"index": index})


def apply(
    states: MutableMapping[str, MemberState], event: Event, tally: Tally, observer: Observer | None = None
) -> MemberState | None:
    """
    Resolve one event into ``states``.

    Returns:
        The member's new state if the event changed it, None for a duplicate.

    """
    before = states.get(event.member_id)
    after = resolve(before, event)
    if after is before:
        tally.duplicates += 1
        if observer is not None:
            observer.duplicate(event)
        return None
    states[event.member_id] = after
    tally.applied += 1
    if observer is not None:
        observer.applied(event, before, after)
    return after


@dataclass(frozen=True)
class Sinks:
    """Where an offline run sends what it finds: dead letters, state changes, metrics."""

    on_dead: Callable[[DeadLetter], None]
    on_change: Callable[[MemberState], None] | None = None
    observer: Observer | None = None
    # (provider, "matched" or "unmatched") for each status found through a dispatch record, or not
    on_correlated: Callable[[str, str], None] | None = None


def resolve_lines(
    lines: Iterable[tuple[str, int, bytes]],
    record_format: str,
    states: MutableMapping[str, MemberState],
    tally: Tally,
    sinks: Sinks,
) -> None:
    """Resolve (source name, line number, record) triples into ``states``: the offline loop."""
    if record_format == "envelope" and sinks.observer is None:
        if sinks.on_change is None and not states:
            _resolve_envelopes_at_once(lines, states, tally, sinks)
        else:
            _resolve_envelopes(lines, states, tally, sinks)
        return
    for name, lineno, line in lines:
        for item in events_of(line, record_format):
            tally.read += 1
            if isinstance(item, DeadLetter):
                tally.dead_lettered += 1
                if sinks.observer is not None:
                    sinks.observer.dead_letter(item.error)
                sinks.on_dead(item.at(file=name, line=lineno))
                continue
            changed = apply(states, item, tally, sinks.observer)
            if changed is not None and sinks.on_change is not None:
                sinks.on_change(changed)


def _decoded(lines: Iterable[tuple[str, int, bytes]], tally: Tally, sinks: Sinks) -> Iterator[Event]:
    """Decode envelope lines, dead-lettering the bad ones; count lines read and dead-lettered."""
    read = dead = 0
    try:
        for name, lineno, line in lines:
            read += 1
            try:
                event = decode_event(line)
            except BadEventError as error:
                dead += 1
                sinks.on_dead(DeadLetter(line, error, {"file": name, "line": lineno}))
                continue
            yield event
    finally:
        tally.read += read
        tally.dead_lettered += dead


def _resolve_envelopes(
    lines: Iterable[tuple[str, int, bytes]], states: MutableMapping[str, MemberState], tally: Tally, sinks: Sinks
) -> None:
    # events_of + apply, inlined: at a million events a run their calls cost a tenth of the time.
    get = states.get
    on_change = sinks.on_change
    applied = duplicates = 0
    for event in _decoded(lines, tally, sinks):
        member_id = event.member_id
        before = get(member_id)
        after = resolve(before, event)
        if after is before:
            duplicates += 1
            continue
        applied += 1
        states[member_id] = after
        if on_change is not None:
            on_change(after)
    tally.duplicates += duplicates
    tally.applied += applied


def _resolve_envelopes_at_once(
    lines: Iterable[tuple[str, int, bytes]], states: MutableMapping[str, MemberState], tally: Tally, sinks: Sinks
) -> None:
    # Nobody wants the intermediate states: join each member's events once
    # (precedence.join_members), instead of building a new state per event. Only into no states:
    # the one-pass join counts duplicates among its own events, not against states it never saw.
    read, dead = tally.read, tally.dead_lettered
    resolved, duplicates = join_members(_decoded(lines, tally, sinks))
    decoded = (tally.read - read) - (tally.dead_lettered - dead)
    for member_id, state in resolved.items():
        before = states.get(member_id)  # none today: one call per run; a join all the same if not
        states[member_id] = state if before is None else merge(before, state)
    tally.applied += decoded - duplicates
    tally.duplicates += duplicates


@dataclass
class DispatchJoin:
    """
    ``statusflow resolve --dispatches``: provider bodies whose events may name no member, joined with dispatch records.

    Dispatches are read first (``dispatches``), then the bodies (``lines``); a status whose
    dispatch is not known yet waits (the join does not care which comes first), and at the end
    (``finish``) each status no dispatch of the input claimed is dead-lettered with reason
    ``unmatched_message``. The whole input is one window: nothing expires before the end, so the
    result does not depend on the order of the lines (README, "Dispatch records").
    """

    record_format: str
    states: MutableMapping[str, MemberState]
    tally: Tally
    sinks: Sinks
    correlator: Correlator[Unclaimed] = field(default_factory=Correlator)

    def dispatches(self, lines: Iterable[tuple[str, int, bytes]]) -> None:
        """Take dispatch records (JSON lines); a bad one, or one naming another member than before, is dead-lettered."""
        for name, lineno, line in lines:
            try:
                dispatch = decode_dispatch(line)
            except BadEventError as error:
                self._dead(DeadLetter(line, error, {"file": name, "line": lineno}))
                continue
            released, conflict = self.correlator.dispatch(dispatch)
            if conflict is not None:
                self._dead(
                    DeadLetter(line, dispatch_conflict(conflict, dispatch.member_id), {"file": name, "line": lineno})
                )
            for joined in released:
                self._apply_claimed(joined.status, joined.dispatch)

    def lines(self, lines: Iterable[tuple[str, int, bytes]]) -> None:
        """Resolve provider bodies; their events without a member wait for their dispatch."""
        for name, lineno, line in lines:
            for item in items_of(line, self.record_format):
                self.tally.read += 1
                if isinstance(item, DeadLetter):
                    self._dead(item.at(file=name, line=lineno))
                elif isinstance(item, Held):
                    origin = item.payload.at(file=name, line=lineno)
                    self._status(Held(item.provider, item.message_id, item.event_id, item.occurred_at, origin))
                else:
                    self._apply(item)

    def finish(self) -> None:
        """End of input: every status still waiting is unmatched."""
        for held in self.correlator.flush():
            if self.sinks.on_correlated is not None:
                self.sinks.on_correlated(held.provider, "unmatched")
            error = unmatched_error(held, "the input has no dispatch record")
            self._dead(DeadLetter(held.payload.raw, error, held.payload.origin))

    def _status(self, held: Held[Unclaimed]) -> None:
        try:
            joined = self.correlator.status(held)
        except OverflowError as overflow:
            self._dead(DeadLetter(held.payload.raw, BadEventError("too_large", "", str(overflow)), held.payload.origin))
            return
        if joined is not None:
            self._apply_claimed(joined.status, joined.dispatch)

    def _apply_claimed(self, status: Held[Unclaimed], dispatch: Dispatch) -> None:
        if self.sinks.on_correlated is not None:
            self.sinks.on_correlated(status.provider, "matched")
        try:
            event = claimed_event(status.payload, dispatch)
        except BadEventError as error:
            self._dead(DeadLetter(status.payload.raw, error, status.payload.origin))
            return
        self._apply(event)

    def _apply(self, event: Event) -> None:
        changed = apply(self.states, event, self.tally, self.sinks.observer)
        if changed is not None and self.sinks.on_change is not None:
            self.sinks.on_change(changed)

    def _dead(self, letter: DeadLetter) -> None:
        self.tally.dead_lettered += 1
        if self.sinks.observer is not None:
            self.sinks.observer.dead_letter(letter.error)
        self.sinks.on_dead(letter)
