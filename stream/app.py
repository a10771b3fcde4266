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
from contextlib import suppress
from typing import Any

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.serializers import codecs
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream import records
from stream.codec import encode_state
from stream.config import Settings
from stream.domain.errors import BadEventError
from stream.domain.model import MemberState
from stream.domain.precedence import resolve
from stream.ingest import DeliveryError, RawIngest
from stream.kafka_client import faust_credentials
from stream.metrics import MembersByStatus, Metrics
from stream.recovery import StatusflowTableManager
from stream.resolver import DeadLetter
from stream.topics import CHANGELOG_CONFIGS, CHANGELOG_MAX_BYTES, durability
from stream.writer import Record, is_too_large


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


_UNKNOWN_END = 2**63  # an end offset not known: treat every pack as a possible replay

_RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def faust_app(settings: Settings) -> faust.App:
    """Return a Faust app configured for ``settings`` (README, "Worker settings")."""
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.broker.split(",")],
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=settings.data_dir,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # stream/topics.py creates every topic (changelog and leader too) with its configs; Faust
        # would ask to create its own again at each start, which needs CREATE even when they exist.
        topic_allow_declare=False,
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
        self.ingest = RawIngest(settings, self.metrics)
        registry.register(MembersByStatus(lambda: list(states.values())))
        self.replay_ends: dict[int, int] = {}

    async def resolve(self, batch: list[Any]) -> None:
        """
        Join each event into its member's state; persist, then publish, each changed member once.

        Persist first, then publish, each write acknowledged: a published state is always in the
        changelog, so a restarted worker starts from at least what subscribers have seen and never
        publishes an older state after it. A crash between the two leaves a state persisted but not
        published; its events come back as duplicates in the packs replayed after a restart, so a
        duplicate from a pack the previous owner may have handled republishes its member's state.
        """
        started = time.perf_counter()
        store = self.states.data  # the store itself: the changelog write below replaces Faust's
        changed: dict[bytes, tuple[MemberState, int]] = {}
        first_seen: dict[bytes, MemberState | None] = {}  # each changed member's state before this batch
        replayed: dict[bytes, int] = {}
        observed = self.metrics.batch()
        replay_ends = await self._replay_ends({pack.message.partition for pack in batch})
        for pack in batch:
            partition = pack.message.partition
            replay = pack.message.offset < replay_ends.get(partition, _UNKNOWN_END)
            for item in records.decode_pack(pack.value):
                key = item.member_id.encode()
                before: MemberState | None = store.get(key)
                after = resolve(before, item)
                if after is before:
                    observed.duplicate(item)
                    if replay:
                        replayed[key] = partition
                    continue
                first_seen.setdefault(key, before)
                store[key] = after
                observed.applied(item, before, after)
                changed[key] = (after, partition)
        for key, partition in changed.items():
            _remember_partition(self.states, key, partition[1])
        changelog = self.states.changelog_topic.get_topic_name()
        refused = await self.ingest.write(
            changelog, [(p, key, records.encode_state(state)) for key, (state, p) in changed.items()]
        )
        if refused:
            await self._refuse_states(batch, refused, first_seen, changed)
        for key, partition in replayed.items():
            if key not in changed and key in store:
                changed[key] = (store[key], partition)
        failed = await self.ingest.write(
            self.settings.output_topic, [(p, key, encode_state(state)) for key, (state, p) in changed.items()]
        )
        if failed:
            raise DeliveryError(f"{len(failed)} states could not be published: {failed[0][1]!r}")
        observed.commit(time.perf_counter() - started)

    async def _refuse_states(
        self,
        batch: list[Any],
        refused: list[tuple[Record, BaseException]],
        first_seen: dict[bytes, MemberState | None],
        changed: dict[bytes, tuple[MemberState, int]],
    ) -> None:
        # A state the changelog will not take (too large even compressed) cannot be kept: the
        # member stays as it was before this batch, and this batch's events of it are
        # dead-lettered, with where they lie and why. Anything else is not ours to decide.
        too_large = {record[1]: error for record, error in refused if is_too_large(error)}
        if len(too_large) < len(refused):
            raise DeliveryError(f"{len(refused)} states could not be persisted: {refused[0][1]!r}")
        store = self.states.data
        for key in too_large:
            before = first_seen[key]  # type: ignore[index]
            if before is None:
                del store[key]
            else:
                store[key] = before
            del changed[key]  # type: ignore[arg-type]
        letters: list[Record] = []
        for pack in batch:
            message = pack.message
            for item in records.decode_pack(pack.value):
                key = item.member_id.encode()
                if key in too_large:
                    error = BadEventError(
                        "too_large",
                        "member_id",
                        f"member {item.member_id!r} would hold a state over the changelog's limit of "
                        f"{CHANGELOG_MAX_BYTES:,} bytes; it keeps its earlier state",
                    )
                    origin = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
                    letter = DeadLetter(orjson.dumps(records.event_fields(item)), error, origin)
                    self.metrics.dead_letter(error)
                    letters.append((message.partition, key, orjson.dumps(letter.document())))
        failed = await self.ingest.write(self.settings.dlq_topic, letters)
        if failed:
            raise DeliveryError(f"{len(failed)} dead letters could not be written: {failed[0][1]!r}")

    async def _replay_ends(self, partitions: set[int]) -> dict[int, int]:
        """Return, per partition, the end offset when it was assigned: packs below it may be replays."""
        missing = partitions - self.replay_ends.keys()
        if missing:
            with suppress(KafkaError):  # unknown: every duplicate republishes until it is known
                self.replay_ends.update(await self.ingest.end_offsets(self.settings.by_member_topic, missing))
        return self.replay_ends

    async def forget_replays(self, *_: Any, **__: Any) -> None:
        """At every assignment: what another worker may have handled is measured anew."""
        self.replay_ends.clear()

    async def measure_lag(self) -> None:
        """Set statusflow_consumer_lag for the partitions this worker holds now."""
        consumer = self.app.consumer
        self.metrics.consumer_lag.clear()  # partitions lost in a rebalance must not linger
        await self.ingest.report_lag()
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            if position is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, consumer.highwater(tp) - position)
                )


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the Faust app for ``settings``; metrics go to ``registry`` (a fresh one by default)."""
    registry = registry or CollectorRegistry()
    app = faust_app(settings)
    states = app.Table(
        "member-states",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=_StateValue,
        extra_topic_configs={**CHANGELOG_CONFIGS, **durability(settings)},
    )
    handlers = Handlers(app, settings, states, registry)
    by_member = app.topic(settings.by_member_topic, partitions=settings.partitions, internal=True, **_RAW)

    def batches(stream: Any) -> Any:
        return stream.take_events(settings.batch_size, within=settings.batch_window)

    app.add_dependency(handlers.ingest)  # started and stopped with the app

    @app.agent(by_member, concurrency=1)  # updates a table: concurrency 1 (faust-streaming#606)
    async def resolve_members(stream: Any) -> None:
        async for batch in batches(stream):
            await handlers.resolve(batch)

    app.timer(interval=5.0)(handlers.measure_lag)
    app.on_partitions_assigned.connect(handlers.forget_replays)

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
