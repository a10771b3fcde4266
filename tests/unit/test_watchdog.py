"""The watchdog: a worker with a crashed app, agent or service exits 1 instead of lingering idle."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from mode import Service
from prometheus_client import CollectorRegistry

from stream.config import Settings
from stream.kafka.app import create_app
from stream.metrics import Metrics
from stream.watchdog import Watchdog


class FakeApp(Service):
    """Stands in for the Faust app: a mode Service with children and agents."""

    def __init__(self, **kwargs: Any) -> None:
        self.agents: dict[str, Any] = {}
        super().__init__(**kwargs)


class Exits:
    """Records the exit status the watchdog asks for, instead of ending the test process."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.called = threading.Event()

    def __call__(self, status: int) -> None:
        """Record the status."""
        self.status = status
        self.called.set()


async def started(*children: Service, grace: float = 30.0) -> tuple[FakeApp, Watchdog, Exits]:
    """Return a started fake app with ``children`` and a fast watchdog, and its exit recorder."""
    app = FakeApp()
    exits = Exits()
    watchdog = Watchdog(app, interval=0.02, grace=grace, exit_process=exits)
    for child in (*children, watchdog):
        app.add_dependency(child)
    await app.start()
    return app, watchdog, exits


async def exited(exits: Exits, within: float = 2.0) -> bool:
    """Return whether the watchdog asked for an exit within ``within`` seconds."""
    return await asyncio.to_thread(exits.called.wait, within)


async def test_a_crashed_service_that_did_not_take_the_app_down_ends_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service crashed in place (the app runs on, idle): one CRITICAL line, exit 1."""
    ingest = Service()
    app, _, exits = await started(ingest)
    with caplog.at_level(logging.CRITICAL, logger="statusflow"):
        ingest._crash(RuntimeError("boom"))  # crashed in place, as under a supervisor: the app runs on

        assert await exited(exits)

    assert exits.status == 1
    assert not app.crashed
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert line == "statusflow worker: Service crashed (RuntimeError: boom); exiting with status 1"
    await app.stop()


async def test_an_agent_with_no_running_actor_ends_the_process() -> None:
    """An agent whose only actor's task has finished processes nothing: exit 1."""
    app, _, exits = await started()
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    actor = SimpleNamespace(crashed=False, actor_task=finished)  # "restarted" onto its finished task
    app.agents["resolve_members"] = SimpleNamespace(
        name="resolve_members", started=True, should_stop=False, _actors=[actor]
    )

    assert await exited(exits)
    assert exits.status == 1
    await app.stop()


async def test_an_actor_restarted_by_its_supervisor_is_not_a_zombie() -> None:
    """A crashed actor already replaced by a running one is no reason to exit."""
    app, _, exits = await started()
    running = asyncio.get_running_loop().create_future()
    old = SimpleNamespace(crashed=True, actor_task=None)
    new = SimpleNamespace(crashed=False, actor_task=running)
    app.agents["resolve_members"] = SimpleNamespace(
        name="resolve_members", started=True, should_stop=False, _actors=[old, new]
    )

    assert not await exited(exits, within=0.3)
    running.cancel()
    await app.stop()


async def test_a_crashed_app_gets_its_grace_to_exit_by_itself_then_is_ended() -> None:
    """Faust stops a crashed app and exits 1; if it lingers past the grace, the watchdog ends it."""
    app, _, exits = await started(grace=0.3)
    app._crash(TypeError("unsupported operand"))

    assert not await exited(exits, within=0.1)  # Faust's worker is stopping it, exit 1 follows
    assert await exited(exits)
    assert exits.status == 1


async def test_a_graceful_stop_is_not_a_crash() -> None:
    """SIGTERM's graceful stop: no exit forced, the watching thread ends."""
    app, watchdog, exits = await started()
    await app.stop()

    assert not await exited(exits, within=0.2)
    assert watchdog._thread is not None
    watchdog._thread.join(timeout=1)
    assert not watchdog._thread.is_alive()


def test_the_worker_app_runs_the_watchdog() -> None:
    """create_app adds the watchdog as a dependency of the app."""
    app = create_app(Settings.from_env({}))
    assert [child for child in app._children if isinstance(child, Watchdog)]


async def test_a_changelog_record_in_an_unknown_format_ends_the_worker_instead_of_a_silent_partial_table(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A restore that meets a record it cannot read ends the process with status 1, naming where it lies."""
    from stream import records
    from stream.kafka import store
    from stream.partitions import MemoryPartition

    exits: list[int] = []

    def record_fatal(what: str, why: BaseException | str | None) -> None:
        exits.append(1)
        logging.getLogger("t").error("%s: %s", what, why)

    monkeypatch.setattr(store, "fatal", record_fatal)
    states = store.MemberStore(Settings(store="memory://"), Metrics(CollectorRegistry()))
    bad = SimpleNamespace(
        topic="statusflow-member-states-changelog", partition=3, offset=41, key=b"m1", value=b'[99, "m1"]'
    )

    async def restore(numbers: list[int]) -> None:
        store.MemberStore._join_records(MemoryPartition(), [bad])

    monkeypatch.setattr(states, "_restore", restore)
    states.restored.clear()  # as assign() leaves it
    await states._restore_all([3])

    assert [1] == exits
    assert "statusflow-member-states-changelog[3] offset 41" in caplog.text
    assert states.records_to_restore() is not None  # never claims to be restored
    with pytest.raises(records.StateFormatError):
        store.MemberStore._join_records(MemoryPartition(), [bad])


def test_a_state_restore_without_progress_counts_as_stalled_and_a_slow_one_does_not() -> None:
    """Records to go that do not move for the limit: stalled; records that keep going down: fine."""
    from stream.watchdog import RecoveryProgress

    now = [0.0]
    remaining = [500]
    progress = RecoveryProgress(limit=120, clock=lambda: now[0])

    verdicts = []
    for moment, left in ((0, 500), (60, 400), (170, 300), (200, 300), (290, 300), (300, 300)):
        now[0], remaining[0] = moment, left
        verdicts.append(progress.stalled(remaining[0]))
    verdicts.append(progress.stalled(None))  # restored

    assert [None, None, None, None, None] == verdicts[:5]
    assert "no progress for 130 s with 300 changelog records to go" == verdicts[5]
    assert verdicts[6] is None
