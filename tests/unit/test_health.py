"""Health probes: alive unless something crashed; ready only when joined, assigned and restored."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from stream.health import ReadyLog, Verdict, liveness, readiness


def app(**state: Any) -> Any:
    """Return a stand-in for a Faust app in a given state (by default: running and ready)."""
    return SimpleNamespace(
        started=state.get("started", True),
        should_stop=state.get("stopping", False),
        rebalancing=state.get("rebalancing", False),
        rebalancing_count=state.get("rebalances", 1),
        consumer=SimpleNamespace(assignment=lambda: {TP("t", 0), TP("t", 1), TP("t-changelog", 0)}),
    )


def test_a_worker_is_alive_until_a_part_of_it_crashes() -> None:
    """The watchdog's finding, in the probe's words."""
    assert liveness(lambda: None).ok
    dead = liveness(lambda: ("agent resolve_members", RuntimeError("boom")))
    assert (False, "agent resolve_members crashed: RuntimeError('boom')") == (dead.ok, dead.reason)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"started": False}, "starting"),
        ({"rebalances": 0}, "joining the consumer group (rebalancing)"),
        ({"rebalancing": True}, "joining the consumer group (rebalancing)"),
        ({"to_restore": 1234}, "restoring member states from the changelog"),
        ({"to_restore": 0}, "restoring member states from the changelog"),
        ({"stopping": True}, "stopping"),
    ],
)
def test_a_worker_is_not_ready_while_it_joins_rebalances_or_recovers(state: dict[str, Any], reason: str) -> None:
    """Each not-ready state answers with its own reason."""
    verdict = readiness(app(**state), lambda: 0, lambda: state.get("to_restore"), "t")

    assert (False, reason) == (verdict.ok, verdict.reason)


def test_a_ready_worker_says_what_it_holds() -> None:
    """Ready: the re-keying partitions held (not the changelog's) and the members in its table, in the JSON body."""
    verdict = readiness(app(), lambda: 42, lambda: None, "t")

    assert {"status": "ok", "reason": "ready", "partitions": 2, "members": 42} == verdict.document()


def test_the_ready_line_is_logged_once_per_time_the_worker_becomes_ready(caplog: pytest.LogCaptureFixture) -> None:
    """One line at start, none while it stays ready, one more after a rebalance."""
    now = [0.0]
    ready_log = ReadyLog(clock=lambda: now[0])
    ready, busy = (
        Verdict(ok=True, reason="ready", detail={"partitions": 8, "members": 3}),
        Verdict(ok=False, reason="x"),
    )

    with caplog.at_level(logging.INFO, logger="statusflow.ready"):
        for moment, verdict in ((1.0, busy), (2.5, ready), (3.0, ready), (10.0, busy), (11.0, ready)):
            now[0] = moment
            ready_log.observe(verdict)

    assert [
        "statusflow worker ready: 8 partitions held, 3 members, 2.5 s after start",
        "statusflow worker ready: 8 partitions held, 3 members, 1.0 s after the last rebalance",
    ] == [record.getMessage() for record in caplog.records]
