"""
What every provider module shares: the shape it returns, and reading our data back out of an event.

A provider module (``stream/providers/<format>.py``) holds everything about one provider and
nothing else: ``NAME`` (how messages name it), ``SOURCE`` and ``CHANNELS`` (its vocabulary's place
in the core), ``VOCABULARY`` (its statuses and error codes -> outcomes, as data, with the page of
the provider's documentation each follows) and ``envelopes_from_body``, which turns one webhook
body as the provider sends it into envelopes (``schemas/envelope.v1.json``), one per event.
Nothing here imports Kafka, Faust, aiohttp or prometheus_client.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

import orjson

from stream.domain import vocab
from stream.domain.errors import BadEventError

# One event of a body: the event as sent, and its envelope or the reason it cannot be one.
Result: TypeAlias = tuple[object, dict[str, Any] | BadEventError]

# What we send along with a message and the provider hands back: the member it is for.
OUR_FIELDS = ("member_id", "campaign_id", "message_type")


class Provider(Protocol):
    """A provider module, as the registry sees it."""

    NAME: str
    SOURCE: str
    CHANNELS: tuple[str, ...]
    VOCABULARY: vocab.Vocabulary

    def dispatch_message_id(self, message_id: str) -> str:
        """
        Return the id the send API returned for the message a status (or a dispatch) names.

        Both sides of the join go through it, so it must be idempotent: SendGrid's ``sg_message_id``
        becomes its prefix, the ``X-Message-Id``; Mailgun's ids lose their angle brackets.
        """
        ...

    def envelopes_from_body(self, body: bytes | str) -> list[Result]:
        """
        Split one webhook body into envelopes, one per event, in order.

        Raises:
            BadEventError: the body as a whole is malformed; it is dead-lettered whole.

        """
        ...


def load_json(body: bytes | str, what: str) -> object:
    """
    Parse a JSON body.

    Raises:
        BadEventError: ``malformed_json``, worded as the envelope decoder words it.

    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        from stream.codec import json_error  # noqa: PLC0415 - codec imports classify, which must wait for the registry

        raise json_error(body, error, f"{what} is not valid JSON") from None


def json_items(body: bytes | str, what: str) -> list[object]:
    """
    Parse a body that is one JSON object or an array of them; return the items.

    Raises:
        BadEventError: not JSON, or neither an object nor an array.

    """
    parsed = load_json(body, what)
    if isinstance(parsed, dict):
        return [parsed]
    if not isinstance(parsed, list):
        raise BadEventError(
            "not_an_object", "", f"a {what} is a JSON object or an array of them, got {type(parsed).__name__}"
        )
    return parsed


def ours(carrier: object) -> dict[str, Any]:
    """
    Return our fields (``member_id``, ``campaign_id``, ``message_type``) found in ``carrier``.

    A carrier is a mapping (custom args, metadata, tags); a value that is a list (SES tags) gives
    its first element. Empty values count as absent.
    """
    if not isinstance(carrier, Mapping):
        return {}
    found = {}
    for name in OUR_FIELDS:
        value = carrier.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value not in (None, ""):
            found[name] = value
    return found


def callback_data(text: object) -> dict[str, Any]:
    """
    Return our fields from a free-text pass-through field (Infobip ``callbackData``, WhatsApp ``biz_opaque_callback_data``).

    Two spellings are read: a JSON object (``{"member_id": "cm-1", "campaign_id": "c-9"}``) or a
    query string (``member_id=cm-1&campaign_id=c-9``). Anything else carries no member.

    >>> callback_data("member_id=cm-1&campaign_id=c-9"), callback_data('{"member_id": "cm-2"}')
    ({'member_id': 'cm-1', 'campaign_id': 'c-9'}, {'member_id': 'cm-2'})
    """
    if isinstance(text, Mapping):
        return ours(text)
    if not isinstance(text, str) or not text.strip():
        return {}
    if text.lstrip().startswith("{"):
        try:
            return ours(orjson.loads(text))
        except orjson.JSONDecodeError:
            return {}
    return ours(dict(urllib.parse.parse_qsl(text.strip())))


def envelope(  # noqa: PLR0913 - one envelope field each
    *,
    source: str,
    channel: str,
    status: str | int,
    occurred_at: object,
    member: Mapping[str, Any],
    event_id: object = None,
    message_id: object = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an envelope with our fields from ``member`` and the provider's ids (when it sent them)."""
    built: dict[str, Any] = {
        **member,
        "source": source,
        "channel": channel,
        "status": status,
        "occurred_at": occurred_at,
        "detail": {key: value for key, value in (detail or {}).items() if value not in (None, "")},
    }
    if event_id not in (None, ""):
        built["event_id"] = event_id
    if message_id not in (None, ""):
        built["message_id"] = message_id
    return built


class NoMemberError(BadEventError):
    """
    An event that names no member of ours: where the member was looked for, and the event's envelope without one.

    Without a dispatch record to join it with (``statusflow resolve`` without ``--dispatches``) it is
    dead-lettered as it stands (``missing_field``); with them, the envelope is held until the
    dispatch of its ``message_id`` names the member (``stream/dispatches.py``).
    """

    def __init__(self, reason: str, field: str, message: str, partial: dict[str, Any]) -> None:
        super().__init__(reason, field, message)
        self.partial = partial


def no_member(name: str, index: int, looked_in: str, field: str, partial: dict[str, Any]) -> NoMemberError:
    """Return the error of an event that names no member: where it was looked for, and its envelope without one."""
    return NoMemberError(
        "missing_field",
        f"[{index}].{field}",
        f"{name} event {index} names no member: looked for member_id in {looked_in}",
        partial,
    )


def message_id_as_sent(message_id: str) -> str:
    """Return the message id a dispatch record names for a status's ``message_id``: for most providers, itself."""
    return message_id


def not_an_object(name: str, index: int) -> BadEventError:
    """Return the dead-letter error of an event that is not a JSON object."""
    return BadEventError("not_an_object", f"[{index}]", f"{name} event {index} is not an object")


def missing(name: str, index: int, field: str, what: str) -> BadEventError:
    """Return the dead-letter error of an event without a field it needs."""
    return BadEventError("missing_field", f"[{index}].{field}", f"{name} event {index} has no {what} ({field})")


def text(value: object) -> str | None:
    """Return ``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def as_dict(value: object) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
