"""Helpers for the provider tests: decode a body the way resolve and the worker do, and read the outcomes."""

from __future__ import annotations

from typing import Any

import orjson

from stream.domain.model import Event
from stream.resolver import DeadLetter, events_of


def decoded(record_format: str, body: bytes | str | dict[str, Any] | list[Any]) -> list[Event | DeadLetter]:
    """Return the events and dead letters one body makes."""
    raw = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else orjson.dumps(body)
    return list(events_of(raw, record_format))


def outcome(record_format: str, body: bytes | str | dict[str, Any] | list[Any]) -> tuple[int, bool]:
    """Return (AdditionStatus, final) of a body holding exactly one good event."""
    (item,) = decoded(record_format, body)
    assert isinstance(item, Event), item
    return item.decision.outcome.code, item.decision.outcome.final


def letter(record_format: str, body: bytes | str | dict[str, Any] | list[Any]) -> DeadLetter:
    """Return the one dead letter a body makes."""
    (item,) = decoded(record_format, body)
    assert isinstance(item, DeadLetter), item
    return item
