"""
Prometheus metrics: the resolver's Observer, in base units, with bounded labels only.

Labels are code ranges, codes, channels, sources and reason classes: all finite sets from the
catalog. Never a member id, an address or a phone number.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.domain.catalog import ADDITION_STATUS, CHANNELS, range_of
from stream.domain.classify import SOURCES
from stream.domain.errors import REASONS, BadEventError
from stream.domain.milestones import MILESTONES, names
from stream.domain.model import Event, MemberState
from stream.domain.precedence import message_of
from stream.providers.registry import PROVIDERS

# The *_created series double every counter's cardinality and no panel or alert reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_RANGE_NAME = {c.code: range_of(c.code).name for c in ADDITION_STATUS}

# Event-time lag spans seconds (live webhooks) to days (late receipts, backfills).
_LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
_PROCESSING_BUCKETS = (0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1)

# The background tasks whose unexpected errors are counted (stream/guard.py), not fatal.
INTERNAL_TASKS = ("measure_lag", "members_by_status", "ready_log")


class Metrics:
    """
    The counters and histograms of one process, registered on ``registry``.

    Every label combination is created up front, so a rate() never starts from a missing series
    and dashboards show zeros instead of gaps.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "statusflow_events",
            "Distinct events applied, by the AdditionStatus code range of their outcome.",
            ["range", "channel", "source"],
            registry=registry,
        )
        self.duplicates = Counter(
            "statusflow_duplicate_events",
            "Events seen before (redeliveries, replays); they change nothing.",
            ["source"],
            registry=registry,
        )
        self.messages = Counter(
            "statusflow_messages",
            "Messages that reached an outcome (sent, failed, complained, not_sent), each counted once per message.",
            ["channel", "outcome"],
            registry=registry,
        )
        self.status_changes = Counter(
            "statusflow_status_changes",
            "Changes of a member's resolved AdditionStatus, by the status changed to.",
            ["code", "shortcode", "range"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "statusflow_dead_letters",
            "Records that could not be resolved, by reason class.",
            ["reason"],
            registry=registry,
        )
        self.event_lag = Histogram(
            "statusflow_event_lag_seconds",
            "Processing time minus the event's occurred_at.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.processing = Histogram(
            "statusflow_processing_seconds",
            "Mean time per event to resolve, persist and publish a batch; one observation per batch.",
            buckets=_PROCESSING_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "statusflow_consumer_lag",
            "Records not yet consumed, per input partition this worker holds.",
            ["topic", "partition"],
            registry=registry,
        )
        self.restored_records = Counter(
            "statusflow_restored_records",
            "Changelog records read to restore member states (a disk store reads only what changed since it wrote).",
            registry=registry,
        )
        self.internal_errors = Counter(
            "statusflow_internal_errors",
            "Unexpected exceptions in background tasks (timers, lag reporting, metrics at scrape "
            "time): each logged, counted and survived.",
            ["task"],
            registry=registry,
        )
        for task in INTERNAL_TASKS:
            self.internal_errors.labels(task)
        # The join with dispatch records (README, "Dispatch records"), per provider format.
        self.held_statuses = Gauge(
            "statusflow_held_statuses",
            "Statuses naming no member that wait for their dispatch record, on the partitions this worker holds.",
            ["provider"],
            registry=registry,
        )
        self.matched_statuses = Counter(
            "statusflow_matched_statuses",
            "Statuses naming no member that their dispatch record gave a member.",
            ["provider"],
            registry=registry,
        )
        self.unmatched_statuses = Counter(
            "statusflow_unmatched_statuses",
            "Statuses naming no member dead-lettered because no dispatch record came within the wait.",
            ["provider"],
            registry=registry,
        )
        self.dispatches = Counter(
            "statusflow_dispatches",
            "Dispatch records read (the sending system's word that a provider accepted a message).",
            ["provider"],
            registry=registry,
        )
        for provider in PROVIDERS:
            self.held_statuses.labels(provider)
            self.matched_statuses.labels(provider)
            self.unmatched_statuses.labels(provider)
            self.dispatches.labels(provider)
        # Children resolved once: .labels() takes a lock and builds a key on every call, a
        # measurable share of the worker's per-event time.
        self._events = {
            (code.code, channel, source): self.events.labels(_RANGE_NAME[code.code], channel, source)
            for code in ADDITION_STATUS
            for channel in CHANNELS
            for source in SOURCES
        }
        self._duplicates = {source: self.duplicates.labels(source) for source in SOURCES}
        self._messages = {
            (channel, outcome): self.messages.labels(channel, outcome) for channel in CHANNELS for outcome in MILESTONES
        }
        self._changes = {
            code.code: self.status_changes.labels(str(code.code), code.shortcode, _RANGE_NAME[code.code])
            for code in ADDITION_STATUS
        }
        for reason in REASONS:
            self.dead_letters.labels(reason)

    def applied(self, event: Event, before: MemberState | None, after: MemberState) -> None:
        """Count an applied event and, if it moved the member, the status change."""
        decision = event.decision
        self._events[decision.outcome.code, event.channel, event.source].inc()
        for outcome in _reached(event, before, after):
            self._messages[event.channel, outcome].inc()
        self.event_lag.observe(max(0.0, time.time() + decision.earliness / 1000))
        code = after.status.outcome.code
        if before is None or before.status.outcome.code != code:
            self._changes[code].inc()

    def duplicate(self, event: Event) -> None:
        """Count an event that had been applied before."""
        self._duplicates[event.source].inc()

    def dead_letter(self, error: BadEventError) -> None:
        """Count a dead-lettered record by its reason class."""
        self.dead_letters.labels(error.reason).inc()

    def correlated(self, provider: str, outcome: str) -> None:
        """Count a status whose member a dispatch record gave (``matched``) or that none claimed (``unmatched``)."""
        counter = self.matched_statuses if outcome == "matched" else self.unmatched_statuses
        counter.labels(provider).inc()

    def batch(self) -> BatchMetrics:
        """Return an Observer that counts locally and adds its totals in one go (``commit``)."""
        return BatchMetrics(self)


class BatchMetrics:
    """
    The same observations as ``Metrics``, summed in plain dicts until ``commit``.

    prometheus_client takes a lock on every ``inc``; per event that was a fifth of the worker's
    CPU. Summed per batch, a batch costs one ``inc`` per label set it touched.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.events: Tally[tuple[int, str, str]] = Tally()
        self.duplicates: Tally[str] = Tally()
        self.changes: Tally[int] = Tally()
        self.messages: Tally[tuple[str, str]] = Tally()
        self.lags: list[float] = []

    def applied(self, event: Event, before: MemberState | None, after: MemberState) -> None:
        """Count an applied event and, if it moved the member, the status change."""
        decision = event.decision
        self.events[decision.outcome.code, event.channel, event.source] += 1
        for outcome in _reached(event, before, after):
            self.messages[event.channel, outcome] += 1
        self.lags.append(decision.earliness)
        code = after.status.outcome.code
        if before is None or before.status.outcome.code != code:
            self.changes[code] += 1

    def duplicate(self, event: Event) -> None:
        """Count an event that had been applied before."""
        self.duplicates[event.source] += 1

    def dead_letter(self, error: BadEventError) -> None:
        """Count a dead-lettered record by its reason class."""
        self.metrics.dead_letter(error)

    def commit(self, seconds: float) -> None:
        """Add the batch's totals; ``seconds`` is what the batch took, observed per event on average."""
        m = self.metrics
        for key, count in self.events.items():
            m._events[key].inc(count)  # noqa: SLF001 - the children are Metrics' own cache
        for source, count in self.duplicates.items():
            m._duplicates[source].inc(count)  # noqa: SLF001
        for code, count in self.changes.items():
            m._changes[code].inc(count)  # noqa: SLF001
        for milestone, count in self.messages.items():
            m._messages[milestone].inc(count)  # noqa: SLF001
        now_ms = time.time() * 1000
        for earliness in self.lags:
            m.event_lag.observe(max(0.0, (now_ms + earliness) / 1000))
        handled = len(self.lags) + sum(self.duplicates.values())
        if handled:
            m.processing.observe(seconds / handled)


def _reached(event: Event, before: MemberState | None, after: MemberState) -> tuple[str, ...]:
    # The milestones the event's message reached through it (each message counts once per milestone).
    message = message_of(after, event.message)
    if message is None:  # cannot happen: the event was applied to this state
        return ()
    held = message_of(before, event.message)
    return names(message.reached if held is None else message.reached & ~held.reached)


class MembersByStatus(Collector):
    """
    ``statusflow_members``: members currently in each AdditionStatus.

    Offline (``resolve --metrics``) it counts the states at scrape time. In the worker counting a
    million states on the event loop stalled it 1.5-2.2 s at every scrape, so there ``counts``
    gives the tallies the state stores keep as states change: what this process holds is exactly
    its partitions' members, so a restart or a lost partition never doubles or strands a count,
    and the sum over workers is the truth.
    """

    def __init__(
        self, states: Callable[[], Iterable[MemberState]], counts: Callable[[], Mapping[int, int]] | None = None
    ) -> None:
        self._states = states
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """Yield the gauge family, one sample per AdditionStatus (zeros included)."""
        counts = self._counts() if self._counts is not None else Tally(s.status.outcome.code for s in self._states())
        family = GaugeMetricFamily(
            "statusflow_members", "Members currently in each AdditionStatus.", labels=["code", "shortcode", "range"]
        )
        for code in ADDITION_STATUS:
            family.add_metric([str(code.code), code.shortcode, _RANGE_NAME[code.code]], counts.get(code.code, 0))
        yield family
