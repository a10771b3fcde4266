"""
Background tasks that must not take the worker down: timers, lag reporting, metrics at scrape time.

An unexpected exception there (a bug, or a client library's transient state such as aiokafka's
``highwater()`` being None right after an assignment) is no reason to stop resolving events, yet
Faust crashes the whole app when a timer raises. ``Guard`` wraps such a task: the exception is
logged once per distinct error (task, type and the line that raised) with its traceback, every
occurrence is counted in ``statusflow_internal_errors_total{task}``, and the task carries on.

Cancellation passes through: ``asyncio.CancelledError`` is not an ``Exception``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec

from prometheus_client import Counter
from prometheus_client.registry import Collector

P = ParamSpec("P")

log = logging.getLogger("statusflow")


class Guard:
    """Log once, count, carry on: for background tasks whose failure must not be fatal."""

    def __init__(self, counter: Counter, logger: logging.Logger | None = None) -> None:
        self.counter = counter
        self.log = logger or log
        self._seen: set[tuple[str, str, str]] = set()

    def record(self, task: str, exc: BaseException) -> None:
        """Count ``exc`` for ``task``; log it with its traceback the first time it is seen."""
        self.counter.labels(task).inc()
        key = (task, type(exc).__qualname__, _origin(exc))
        if key in self._seen:
            self.log.debug("%s failed again: %r", task, exc)
            return
        self._seen.add(key)
        self.log.error(
            "%s failed; carrying on (logged once, counted in statusflow_internal_errors_total): %r",
            task,
            exc,
            exc_info=exc,
        )

    def task(self, name: str) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Awaitable[None]]]:
        """Return a decorator for an async task (a timer's body) that must never raise."""

        def decorate(fun: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
            @functools.wraps(fun)
            async def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
                try:
                    await fun(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the point: anything unexpected, survived
                    self.record(name, exc)

            return guarded

        return decorate

    def collector(self, name: str, collector: Collector) -> Collector:
        """Return ``collector`` guarded: a failing scrape yields none of its samples instead of an error."""
        return _GuardedCollector(self, name, collector)


class _GuardedCollector(Collector):
    def __init__(self, guard: Guard, name: str, collector: Collector) -> None:
        self._guard = guard
        self._name = name
        self._collector = collector

    def collect(self) -> Iterable[Any]:
        try:
            return list(self._collector.collect())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail the whole /metrics page
            self._guard.record(self._name, exc)
            return []


def _origin(exc: BaseException) -> str:
    """Return where ``exc`` was raised (file:line of the innermost frame), to tell errors apart."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
