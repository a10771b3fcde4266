"""
Liveness and readiness of a worker, for ``/healthz`` and ``/readyz`` (Kubernetes probes).

Alive: the process answers (so its event loop runs) and no part of the app has crashed (the
watchdog's own test). Ready: the consumer group is joined, the partitions are assigned and the
states are restored, so events are being resolved; during a rebalance or a restore a worker is
alive but not ready, and says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("statusflow.ready")  # the worker writes it at any level (logs.say_always)


@dataclass(frozen=True)
class Verdict:
    """A probe's answer: whether all is well, and if not, why (a JSON document either way)."""

    ok: bool
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """Return the JSON body of the probe's response."""
        return {"status": "ok" if self.ok else "unavailable", "reason": self.reason, **self.detail}


def liveness(find_crash: Callable[[], tuple[str, Any] | None]) -> Verdict:
    """Return whether the worker is alive: nothing under the app has crashed."""
    crash = find_crash()
    if crash is None:
        return Verdict(ok=True, reason="alive")
    what, why = crash
    return Verdict(ok=False, reason=f"{what} crashed: {why!r}")


def readiness(app: Any, members: Callable[[], int], to_restore: Callable[[], int | None], topic: str) -> Verdict:
    """
    Return whether the worker resolves events: group joined, partitions of ``topic`` assigned, states restored.

    ``to_restore`` gives the changelog records still to read, or None when no restore is running.
    """
    if not app.started or app.should_stop:
        return Verdict(ok=False, reason="starting" if not app.should_stop else "stopping")
    if app.rebalancing or not app.rebalancing_count:
        return Verdict(ok=False, reason="joining the consumer group (rebalancing)")
    remaining = to_restore()
    if remaining is not None:
        return Verdict(
            ok=False, reason="restoring member states from the changelog", detail={"records_to_restore": remaining}
        )
    held = sum(1 for tp in app.consumer.assignment() if tp.topic == topic)  # not the changelog's, nor Faust's own
    return Verdict(ok=True, reason="ready", detail={"partitions": held, "members": members()})


class ReadyLog:
    """Says, in one line, each time the worker becomes ready: partitions, members, seconds taken."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.since = clock()
        self.ready = False
        self.since_start = True

    def observe(self, verdict: Verdict) -> bool:
        """Log the moment ``verdict`` turns ready, and return whether it just did; time again when it stops being."""
        became_ready = verdict.ok and not self.ready
        if became_ready:
            log.info(
                "statusflow worker ready: %s partitions held, %s members, %.1f s after %s",
                verdict.detail.get("partitions"),
                verdict.detail.get("members"),
                self.clock() - self.since,
                "start" if self.since_start else "the last rebalance",
            )
            self.since_start = False
        elif not verdict.ok and self.ready:
            self.since = self.clock()
        self.ready = verdict.ok
        return became_ready
