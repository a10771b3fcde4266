"""Log rate limiting: an outage's thousand identical errors become one line per 10 s with a count."""

from __future__ import annotations

import logging

from stream.logs import RateLimit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now


def record(message: str, *args: object, level: int = logging.ERROR, name: str = "aiokafka") -> logging.LogRecord:
    """Return a log record as a library would make it."""
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_repeats_of_one_error_pass_once_per_window_and_the_next_line_counts_them() -> None:
    """3,000 'Unable connect' errors over 20 s: three lines, the later ones saying how many were held."""
    clock = Clock()
    limit = RateLimit(window=10.0, clock=clock)
    passed = []

    for i in range(3000):
        clock.now = i * 20 / 3000
        line = record("Unable connect to node with id %s: %s", 1, "refused")
        if limit.filter(line):
            passed.append(line.getMessage())
    clock.now = 20.0
    last = record("Unable connect to node with id %s: %s", 1, "refused")

    assert limit.filter(last)
    assert 2 == len(passed)
    assert "[1499 more like this in the last 10 s]" in passed[1]
    assert "[1499 more like this in the last 10 s]" in last.getMessage()


def test_distinct_messages_are_limited_independently() -> None:
    """A different error in the same window is news and passes."""
    limit = RateLimit(clock=Clock())

    assert limit.filter(record("Unable connect to node %s", 1))
    assert limit.filter(record("Failed fetch messages from %s", 1))
    assert not limit.filter(record("Unable connect to node %s", 2))


def test_a_fresh_brokers_coordinator_not_available_is_not_an_error() -> None:
    """Clients retry GroupCoordinatorNotAvailable by design: it is demoted to INFO and hidden at WARNING."""
    line = record("Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailableError")

    assert not RateLimit(clock=Clock()).filter(line)
    assert "INFO" == line.levelname
    assert RateLimit(threshold=logging.INFO, clock=Clock()).filter(line)
