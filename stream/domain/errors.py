"""The one error the core raises for bad input: what went wrong, where, and why."""

from __future__ import annotations

# Every reason class, so metrics can label dead letters with a bounded set of values.
REASONS: tuple[str, ...] = (
    "malformed_json",
    "not_an_object",
    "missing_field",
    "bad_field",
    "unknown_source",
    "unsupported_channel",
    "unknown_status",
    "bad_time",
    "empty_record",  # a null value (a tombstone) or no bytes at all
    "too_large",  # a record, or what it would make, that Kafka cannot take even when split
    "internal_error",  # an unexpected exception while decoding: a statusflow bug, kept with its words
    "unmatched_message",  # a status naming no member whose dispatch record never came (stream/dispatches.py)
)


MESSAGE_LIMIT = 500


class BadEventError(ValueError):
    """
    An event that cannot be resolved.

    Args:
        reason: one of ``REASONS``: the class of problem (what).
        field: the envelope field at fault, or ``""`` for the record as a whole (where).
        message: a sentence a person can act on (why).

    """

    def __init__(self, reason: str, field: str, message: str) -> None:
        assert reason in REASONS, reason  # noqa: S101 - a programming error, not bad input
        if len(message) > MESSAGE_LIMIT:  # a message quotes values as sent; a 1 MB value must not ride along
            message = f"{message[:MESSAGE_LIMIT]}... ({len(message):,} characters, cut)"
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f" in field '{self.field}'" if self.field else ""
        return f"{self.reason}{where}: {self.message}"
