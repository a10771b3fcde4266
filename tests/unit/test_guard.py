"""Background tasks survive their own errors: logged once per distinct error, counted, carried on."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from stream.config import Settings
from stream.guard import Guard
from stream.kafka.app import Handlers
from stream.metrics import INTERNAL_TASKS, Metrics


def errors(registry: CollectorRegistry, task: str) -> float | None:
    """Return the internal-error count of ``task``."""
    return registry.get_sample_value("statusflow_internal_errors_total", {"task": task})


def test_every_known_task_has_its_error_counter_from_the_start() -> None:
    """statusflow_internal_errors_total{task} exists at zero for each known task."""
    registry = CollectorRegistry()
    Metrics(registry)
    assert all(errors(registry, task) == 0 for task in INTERNAL_TASKS)


async def test_a_guarded_task_logs_each_distinct_error_once_counts_all_and_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Five failures of two kinds: five counted, two logged with tracebacks, none raised."""
    registry = CollectorRegistry()
    guard = Guard(Metrics(registry).internal_errors)
    calls: list[int] = []

    @guard.task("measure_lag")
    async def tick(kind: str) -> None:
        calls.append(1)
        if kind == "none":
            raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'int'")
        if kind == "other":
            raise KeyError("gone")

    with caplog.at_level(logging.DEBUG, logger="statusflow"):
        for kind in ["none", "none", "ok", "none", "other", "other"]:
            await tick(kind)  # never raises

    assert len(calls) == 6
    assert errors(registry, "measure_lag") == 5
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.exc_info[0] for r in logged if r.exc_info] == [TypeError, KeyError]
    assert all("measure_lag" in r.getMessage() for r in logged)


async def test_cancellation_passes_through_the_guard() -> None:
    """A stop or cancel is not an error to survive."""
    guard = Guard(Metrics(CollectorRegistry()).internal_errors)

    @guard.task("measure_lag")
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await cancelled()


def test_a_failing_collector_leaves_the_rest_of_the_scrape_intact() -> None:
    """A collector that raises at scrape time is counted; /metrics still answers."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    guard = Guard(metrics.internal_errors)

    class Broken:
        def collect(self) -> Any:
            raise RuntimeError("dictionary changed size during iteration")

    registry.register(guard.collector("members_by_status", Broken()))

    first, second = generate_latest(registry).decode(), generate_latest(registry).decode()

    assert "statusflow_dead_letters_total" in first  # the scrape answers, without that collector
    assert 'statusflow_internal_errors_total{task="members_by_status"} 1.0' in second


async def test_lag_is_measured_only_for_partitions_whose_highwater_and_position_are_known() -> None:
    """Right after an assignment (or while a recovery pauses partitions) highwater() is None."""
    known, fresh, unpositioned = (TopicPartition("by-member", p) for p in range(3))
    positions = {known: 5, fresh: 0, unpositioned: None}
    highwaters = {known: 9, fresh: None, unpositioned: 4}

    async def position(tp: TopicPartition) -> int | None:
        return positions[tp]

    consumer = SimpleNamespace(assignment=lambda: set(positions), position=position, highwater=highwaters.get)
    registry = CollectorRegistry()
    watchdog = SimpleNamespace(fatal=lambda *_: None)
    handlers = Handlers(SimpleNamespace(), Settings(), registry, watchdog)  # type: ignore[arg-type]
    handlers.resolver.consumer = consumer  # the re-key topic's consumer
    handlers.ingest.consumer = consumer  # the raw topics' consumer: same gaps

    await handlers.measure_lag()

    lag = {
        labels["partition"]: value
        for metric in registry.collect()
        if metric.name == "statusflow_consumer_lag"
        for _, labels, value, *_ in metric.samples
    }
    assert lag == {"0": 4}
