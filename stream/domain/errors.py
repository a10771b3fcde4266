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
)


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
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f" in field '{self.field}'" if self.field else ""
        return f"{self.reason}{where}: {self.message}"
