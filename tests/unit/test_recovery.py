"""The Faust recovery fix: no record may flow between resuming the stream partitions and seeking them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables.recovery import Recovery

from stream.config import Settings
from stream.kafka.app import create_app
from stream.kafka.recovery import SeekBeforeFlowRecovery, StatusflowTableManager


async def test_faust_resumes_and_seeks_the_partitions_with_the_flow_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Faust's own on_recovery_completed resumes and seeks, neither the consumer nor the streams may flow."""
    seen: dict[str, Any] = {}
    consumer = SimpleNamespace(flow_active=True)
    consumer.stop_flow = lambda: setattr(consumer, "flow_active", False)
    flow_control = SimpleNamespace(active=True)
    flow_control.suspend = lambda: setattr(flow_control, "active", False)

    async def faust_on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
        seen.update(consumer_flows=consumer.flow_active, streams_flow=flow_control.active, generation=generation_id)

    monkeypatch.setattr(Recovery, "on_recovery_completed", faust_on_recovery_completed)
    recovery = object.__new__(SeekBeforeFlowRecovery)
    recovery.app = SimpleNamespace(consumer=consumer, flow_control=flow_control)  # type: ignore[assignment]

    await recovery.on_recovery_completed(7)

    assert {"consumer_flows": False, "streams_flow": False, "generation": 7} == seen


def test_the_worker_app_recovers_its_table_with_the_fix() -> None:
    """The app's table manager hands out the fixed recovery service."""
    app = create_app(Settings.from_env({}))
    tables = app.tables
    assert isinstance(tables, StatusflowTableManager)
    assert isinstance(tables.recovery, SeekBeforeFlowRecovery)
