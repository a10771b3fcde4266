"""
Liveness and readiness of a worker, for ``/healthz`` and ``/readyz`` (Kubernetes probes).

Alive: the process answers (so its event loop runs) and no part of the app has crashed (the
watchdog's own test). Ready: the consumer group is joined, the partitions are assigned and the
table is recovered, so events are being resolved; during a rebalance or a recovery a worker is
alive but not ready, and says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("statusflow.ready")
log.setLevel(logging.INFO)  # the one line a worker says when it is ready, even at the default level


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


def readiness(app: Any, members: Callable[[], int]) -> Verdict:
    """Return whether the worker resolves events: group joined, partitions assigned, table recovered."""
    if not app.started or app.should_stop:
        return Verdict(ok=False, reason="starting" if not app.should_stop else "stopping")
    if app.rebalancing or not app.rebalancing_count:
        return Verdict(ok=False, reason="joining the consumer group (rebalancing)")
    recovery = app.tables.recovery
    if app.in_recovery or not recovery.completed.is_set():
        return Verdict(
            ok=False,
            reason="recovering the table from its changelog",
            detail={"records_to_recover": recovery.active_remaining_total()},
        )
    return Verdict(ok=True, reason="ready", detail={"partitions": len(app.consumer.assignment()), "members": members()})


class ReadyLog:
    """Says, in one line, each time the worker becomes ready: partitions, members, seconds taken."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.since = clock()
        self.ready = False
        self.since_start = True

    def observe(self, verdict: Verdict) -> None:
        """Log the moment ``verdict`` turns ready; start timing again when it stops being ready."""
        if verdict.ok and not self.ready:
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
