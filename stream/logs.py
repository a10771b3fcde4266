"""
Log lines an operator can read during an outage: each distinct message at most once per window.

When the broker goes away, aiokafka and Faust log the same few errors on every retry of every
connection: an 18 s outage printed 3,092 ERROR lines. ``RateLimit`` lets the first line of each
distinct message (same logger, level and message template) through, holds back the repeats for
``window`` seconds, and says how many it held back on the next line it lets through. Messages
that are normal on a fresh or rebalancing cluster are demoted to INFO.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# Said by a broker that is still electing its group coordinator (a fresh broker, a restart): Kafka
# clients retry it by design, so it is news, not an error.
_EXPECTED = ("GroupCoordinatorNotAvailable", "CoordinatorNotAvailable", "NotCoordinator")


class RateLimit(logging.Filter):
    """
    A handler filter: at most one line per distinct message per ``window`` seconds.

    Args:
        window: seconds during which repeats of a message are held back.
        threshold: the level the process logs at; a message demoted below it is dropped.
        clock: the time source (tests pass a fake one).

    """

    def __init__(
        self, window: float = 10.0, threshold: int = logging.WARNING, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self.threshold = threshold
        self.clock = clock
        self._last: dict[tuple[str, int, str], float] = {}
        self._held: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether ``record`` is written; annotate it with the count of repeats held back."""
        if record.levelno > logging.INFO and any(word in record.getMessage() for word in _EXPECTED):
            record.levelno, record.levelname = logging.INFO, "INFO"
            if record.levelno < self.threshold:  # demoted below what the process logs
                return False
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.window:g} s]"
        if len(self._last) > 10_000:  # messages with ids in the template; keep the memory bounded
            self._last.clear()
        return True


def rate_limit(logger: logging.Logger, window: float = 10.0) -> None:
    """Install ``RateLimit`` on every handler of ``logger`` (the root logger, once it is set up)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RateLimit) for f in handler.filters):
            handler.addFilter(RateLimit(window, threshold=max(handler.level, logger.getEffectiveLevel())))
