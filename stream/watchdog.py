"""
A worker whose app, agent or service has crashed exits with status 1; it never lingers idle.

Faust and mode do not guarantee that. A crashed service that has a supervisor (an agent's actor,
say) only marks itself crashed, and a "restarted" actor can sit on a stream that no longer feeds
it; an agent that raised has already let Faust commit its acknowledged offsets. The process stays
up, answers /metrics and processes nothing. Exiting is always safe here: offsets are committed only
after what they produced is flushed, so a restart replays, and the member join makes replays
no-ops (README, "Delivery guarantee"). An orchestrator restarts an exited worker; nobody restarts
a live zombie.

``Watchdog`` is a mode Service the app depends on. A daemon thread (so that it still runs when the
event loop is shutting down or stuck in a shutdown) looks every ``interval`` seconds for:

- a crashed app: Faust's worker is then shutting down and will exit with status 1 itself; if the
  process is still alive ``grace`` seconds later, the watchdog ends it;
- a crashed service anywhere under the app (mode's ``crashed`` flag; not a cancellation, which
  is how Faust restarts an agent's actor at a rebalance);
- an agent with no running actor (every actor task done) while the app runs.

Anything but a crashed app must still be there a tick later (a supervisor's restart is not a
zombie).

What it finds is logged in one line, and the process ends with ``os._exit(1)``: no graceful stop,
whose commits could acknowledge work that was never done (the same as a kill -9, which the
delivery guarantee covers). ``fatal`` does the same at once, for code that catches a crash itself
(``MemberResolver`` does, so that nothing of a failed batch is acknowledged).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from asyncio import CancelledError
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from mode import Service

log = logging.getLogger("statusflow")


def _hard_exit(status: int) -> NoReturn:
    os._exit(status)


def fatal(what: str, reason: BaseException | str | None, exit_process: Callable[[int], Any] | None = None) -> None:
    """Log what failed in one line (and the traceback, if any), then end the process with status 1."""
    if isinstance(reason, BaseException):
        log.error("%s crashed", what, exc_info=reason)
        reason = f"{type(reason).__name__}: {reason}"
    log.critical("statusflow worker: %s crashed (%s); exiting with status 1", what, reason)
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    sys.stderr.flush()
    (exit_process or _hard_exit)(1)


class Watchdog(Service):
    """Ends the process with status 1 when the app, an agent or a service under it has crashed."""

    def __init__(  # noqa: PLR0913 - keyword settings with defaults
        self,
        app: Any,
        to_restore: Callable[[], int | None] = lambda: None,
        *,
        interval: float = 1.0,
        grace: float = 30.0,
        recovery_stall: float = 120.0,
        exit_process: Callable[[int], Any] = _hard_exit,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.interval = interval
        self.grace = grace
        self._recovery = RecoveryProgress(recovery_stall)
        self._to_restore = to_restore
        self._exit = exit_process
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Start watching."""
        self._halt.clear()
        self._thread = threading.Thread(target=self._watch, name="statusflow-watchdog", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        """Stop watching on a graceful stop; keep watching a crashed app until it has exited."""
        if not self.app.crashed:
            self._halt.set()

    def fatal(self, what: str, reason: BaseException | str | None) -> None:
        """Log what crashed in one line (and the traceback, if any), then end the process with status 1."""
        fatal(what, reason, self._exit)

    def find_crash(self) -> tuple[str, Any] | None:
        """Return (what, why) for the first crashed part of the app, or None if all is well."""
        app = self.app
        if app.crashed:
            return "the app", app.crash_reason
        if not app.started or app.should_stop:
            return None  # starting, or stopping gracefully
        for service in _services(app):
            if service is not self and service.crashed and not isinstance(service.crash_reason, CancelledError):
                return _label(service), service.crash_reason
        for agent in getattr(app, "agents", {}).values():
            actors = list(getattr(agent, "_actors", ()))
            if agent.started and not agent.should_stop and actors and all(_done(actor) for actor in actors):
                return f"agent {agent.name}", "no actor running"
        stalled = self._recovery.stalled(self._to_restore())
        return None if stalled is None else ("the state restore", stalled)

    def _watch(self) -> None:
        suspect: str | None = None  # seen once: a crash must still be there a tick later
        app_crashed_at: float | None = None
        while not self._halt.wait(self.interval):
            try:
                found = self.find_crash()
            except Exception as exc:  # noqa: BLE001 - a graph changing under us: look again next time
                log.debug("watchdog: could not inspect the app: %r", exc)
                continue
            if found is None:
                suspect = None
                continue
            what, why = found
            if what != "the app":
                if what == suspect:  # not a supervisor's restart in progress: it stays crashed
                    self.fatal(what, why)
                    return
                suspect = what
                continue
            # Faust's worker stops a crashed app and exits 1 itself; make sure it does.
            if app_crashed_at is None:
                app_crashed_at = time.monotonic()
                log.critical("statusflow worker: the app crashed (%r); exiting with status 1", why)
            elif time.monotonic() - app_crashed_at > self.grace:
                self.fatal("the app", f"{why!r}; still alive {self.grace:.0f} s later")
                return


class RecoveryProgress:
    """
    Tells a restore of the member states that has stopped from one that is long.

    A restore whose records to go have not changed for ``limit`` seconds (a changelog partition
    that cannot be read) is reported, so the watchdog ends the worker and its orchestrator starts
    a fresh one, instead of a worker alive, not crashed, and resolving nothing.
    """

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._remaining: int | None = None
        self._since = 0.0

    def stalled(self, remaining: int | None) -> str | None:
        """Return why the restore counts as stalled, given its records to go (None: not restoring)."""
        if remaining is None:
            self._remaining = None
            return None
        now = self.clock()
        if remaining != self._remaining:
            self._remaining, self._since = remaining, now
            return None
        if now - self._since > self.limit:
            return f"no progress for {now - self._since:.0f} s with {remaining} changelog records to go"
        return None


def _services(root: Any) -> Iterator[Any]:
    """Yield every service under ``root`` (mode's dependency tree), root first, each once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        service = stack.pop()
        if service is None or id(service) in seen:
            continue
        seen.add(id(service))
        yield service
        stack.extend(list(getattr(service, "_children", ())))
        supervisor = getattr(service, "supervisor", None)
        if supervisor is not None and hasattr(supervisor, "_services"):
            stack.extend(list(supervisor._services))  # noqa: SLF001 - an agent's live actors


def _done(actor: Any) -> bool:
    task = getattr(actor, "actor_task", None)
    return bool(actor.crashed or (task is not None and task.done()))


def _label(service: Any) -> str:
    return str(getattr(service, "shortlabel", None) or type(service).__name__)
