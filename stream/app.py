"""
The Faust app: raw topics -> re-key by member -> resolve into a table -> publish changes.

Two hops, because raw records are not keyed by member (a SendGrid body holds many members):

1. ``RawIngest`` (stream/ingest.py): decode raw records in batches; dead-letter what cannot be
   resolved (original bytes, reason, topic/partition/offset); forward events in packs, one record
   per destination partition of the re-keying topic.
2. ``resolve_members``, a Faust agent (concurrency 1: it updates a table, faust-streaming#606):
   apply the core's join to each member's state in a changelog-backed table; publish the state
   only if it changed.

Delivery is at-least-once: Faust flushes the producer before it commits offsets, so a crash
replays records, and the join makes every replay a no-op (README, "Delivery guarantee").
"""

from __future__ import annotations

import time
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.serializers import codecs
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream import records
from stream.codec import encode_state
from stream.config import Settings
from stream.domain.model import MemberState
from stream.domain.precedence import resolve
from stream.guard import Guard
from stream.ingest import RawIngest
from stream.metrics import MembersByStatus, Metrics
from stream.recovery import StatusflowTableManager
from stream.watchdog import Watchdog


class _StateCodec(codecs.Codec):
    """Table values: MemberState <-> the compact changelog record."""

    def _dumps(self, obj: Any) -> bytes:
        return records.encode_state(obj)

    def _loads(self, s: bytes) -> Any:
        return records.decode_state(s)


codecs.register("statusflow_state", _StateCodec())


class _StateValue:
    """
    The table's value type, as Faust wants to see one.

    It names our codec, and takes back what the codec already turned into a MemberState
    (Faust calls ``from_data`` on recovery).
    """

    class _options:  # noqa: N801 - the attribute name Faust looks up
        serializer = "statusflow_state"

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:  # noqa: ARG003 - Faust's signature
        return data


_RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def faust_app(settings: Settings) -> faust.App:
    """Return a Faust app configured for ``settings`` (README, "Worker settings")."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.broker}",
        store=settings.store,
        datadir=settings.data_dir,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        # Standbys would keep other workers' members in this process's table and in its gauges.
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_commit_interval=settings.commit_interval,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=False,
        TableManager=StatusflowTableManager,  # seeks before records flow after a recovery
    )


class Handlers:
    """What the agents do with each batch; the agents themselves only iterate."""

    def __init__(self, app: faust.App, settings: Settings, states: Any, registry: CollectorRegistry) -> None:
        self.app = app
        self.settings = settings
        self.states = states
        self.metrics = Metrics(registry)
        self.guard = Guard(self.metrics.internal_errors)
        self.ingest = RawIngest(settings, self.metrics)
        registry.register(self.guard.collector("members_by_status", MembersByStatus(lambda: list(states.values()))))

    async def resolve(self, batch: list[Any]) -> None:
        """Join each event into its member's state; persist and publish each changed member once."""
        started = time.perf_counter()
        store = self.states.data  # the store itself: the changelog write below replaces Faust's
        changed: dict[bytes, tuple[MemberState, int]] = {}
        observed = self.metrics.batch()
        for pack in batch:
            for item in records.decode_pack(pack.value):
                key = item.member_id.encode()
                before: MemberState | None = store.get(key)
                after = resolve(before, item)
                if after is before:
                    observed.duplicate(item)
                    continue
                store[key] = after
                observed.applied(item, before, after)
                changed[key] = (after, pack.message.partition)
        for key, (_, partition) in changed.items():
            _remember_partition(self.states, key, partition)
        items = list(changed.items())
        # Publish first, persist second, each flushed: if the worker dies in between, the
        # changelog still holds the older state, so the replayed events change it again and the
        # state is published again. The other order could leave a state persisted but never
        # published, and every replay would then be a duplicate that publishes nothing.
        await self.ingest.send_batches(
            self.settings.output_topic, [(p, key, encode_state(state)) for key, (state, p) in items]
        )
        await self.ingest.flush()
        changelog = self.states.changelog_topic.get_topic_name()
        await self.ingest.send_batches(changelog, [(p, key, records.encode_state(state)) for key, (state, p) in items])
        # Before Faust may ack (and later commit) these packs, their effects must be durable.
        await self.ingest.flush()
        observed.commit(time.perf_counter() - started)

    async def measure_lag(self) -> None:
        """
        Set statusflow_consumer_lag for the partitions this worker holds now.

        Right after an assignment, and while Faust pauses partitions for a table recovery, a
        partition's highwater (or position) is not known yet: it is skipped until it is.
        """
        consumer = self.app.consumer
        self.metrics.consumer_lag.clear()  # partitions lost in a rebalance must not linger
        await self.ingest.report_lag()
        for tp in consumer.assignment():
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked since assignment() was read
                continue
            highwater = consumer.highwater(tp)
            if position is not None and highwater is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the Faust app for ``settings``; metrics go to ``registry`` (a fresh one by default)."""
    registry = registry or CollectorRegistry()
    app = faust_app(settings)
    states = app.Table("member-states", partitions=settings.partitions, key_type=bytes, value_type=_StateValue)
    handlers = Handlers(app, settings, states, registry)
    by_member = app.topic(settings.by_member_topic, partitions=settings.partitions, internal=True, **_RAW)

    def batches(stream: Any) -> Any:
        return stream.take_events(settings.batch_size, within=settings.batch_window)

    app.add_dependency(handlers.ingest)  # started and stopped with the app
    watchdog = Watchdog(app)
    app.add_dependency(watchdog)  # a crashed app, agent or service ends the process

    @app.agent(by_member, concurrency=1)  # updates a table: concurrency 1 (faust-streaming#606)
    async def resolve_members(stream: Any) -> None:
        try:
            async for batch in batches(stream):
                await handlers.resolve(batch)
        except Exception as exc:  # handed to the watchdog, which ends the process
            # Exit before Faust's agent error path runs: it commits, and closing the batch
            # iterator acknowledges the failed batch, so a graceful stop could commit it unapplied.
            watchdog.fatal("agent resolve_members", exc)
            raise

    app.timer(interval=5.0)(handlers.guard.task("measure_lag")(handlers.measure_lag))

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:  # noqa: ARG001 - Faust's page signature
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return app


def _remember_partition(table: Any, key: bytes, partition: int) -> None:
    # Faust's memory store only learns a key's partition from the changelog, so after a
    # rebalance it would keep members this worker no longer owns (and count them in
    # statusflow_members). Telling it drops them on the next recovery, as for recovered keys.
    key_partition = getattr(table.data, "_key_partition", None)
    if key_partition is not None:
        key_partition[key] = partition
