"""
The worker: raw topics -> re-key by member -> resolve into the member states -> publish changes.

Two hops, because raw records are not keyed by member (a SendGrid body holds many members):

1. ``RawIngest`` (stream/kafka/ingest.py): decode raw records in batches; dead-letter what cannot be
   resolved (original bytes, reason, topic/partition/offset); forward events in packs, one record
   per destination partition of the re-keying topic.
2. ``MemberResolver`` (stream/kafka/resolving.py) reads the packs in batches; ``Handlers.resolve``
   applies the core's join to each member's state (``MemberStore``: a store per partition, with its
   changelog), persists and publishes each changed state once.

The Faust app hosts them (services, timers, the web pages and its shutdown). Delivery is
at-least-once: offsets are committed only after what they produced was acknowledged, so a crash
replays records, and the join makes every replay a no-op (README, "Delivery guarantee").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
import orjson
from aiokafka.errors import IllegalStateError, KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream import records
from stream.codec import encode_state
from stream.config import Settings
from stream.domain.errors import BadEventError
from stream.domain.model import MemberState
from stream.domain.precedence import resolve
from stream.guard import Guard
from stream.health import ReadyLog, Verdict, liveness, readiness
from stream.kafka.client import faust_credentials
from stream.kafka.correlate import Correlation
from stream.kafka.ingest import DeliveryError, RawIngest
from stream.kafka.recovery import StatusflowTableManager
from stream.kafka.resolving import MemberResolver
from stream.kafka.store import MemberStore
from stream.kafka.topics import CHANGELOG_MAX_BYTES
from stream.kafka.writer import Record, is_too_large
from stream.metrics import BatchMetrics, MembersByStatus, Metrics
from stream.resolver import DeadLetter
from stream.watchdog import Watchdog

_UNKNOWN_END = 2**63
_END_OFFSETS_TIMEOUT = 5.0
log = logging.getLogger(__name__)  # an end offset not known: treat every pack as a possible replay


def faust_app(settings: Settings) -> faust.App:
    """Return a Faust app configured for ``settings`` (README, "Worker settings")."""
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.broker.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",  # no Faust table: the member states are stream.kafka.store's
        datadir=settings.data_dir,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # stream/kafka/topics.py creates every topic (changelog and leader too) with its configs; Faust
        # would ask to create its own again at each start, which needs CREATE even when they exist.
        topic_allow_declare=False,
        # No Faust table holds member states (stream.kafka.store does); no standbys to keep either.
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_commit_interval=settings.commit_interval,
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=settings.instance_id or None,
        producer_acks=-1,
        TableManager=StatusflowTableManager,  # seeks before records flow after a recovery
        # Serve only /metrics, /healthz, /readyz and Faust's static index: /table/ (empty, as no
        # Faust table is used), /router/ and the statistics pages tell an outsider about the cluster.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
    )


class Handlers:
    """What the worker's services (``RawIngest``, ``MemberResolver``) do with each batch; they only read."""

    def __init__(self, app: faust.App, settings: Settings, registry: CollectorRegistry, watchdog: Watchdog) -> None:
        self.app = app
        self.settings = settings
        self.metrics = Metrics(registry)
        self.states = MemberStore(settings, self.metrics)
        self.guard = Guard(self.metrics.internal_errors)
        self.ingest = RawIngest(settings, self.metrics)
        self.members = MembersByStatus(self.states.values, counts=self.states.tally)
        self.ready_log = ReadyLog()
        registry.register(self.guard.collector("members_by_status", self.members))
        self.replay_ends: dict[int, int] = {}
        self.resolver = MemberResolver(settings, self.resolve, self.on_assigned, watchdog.fatal)

    async def resolve(self, batch: list[Any]) -> None:
        """
        Join each event into its member's state; persist, then publish, each changed member once.

        Persist first, then publish, each write acknowledged: a published state is always in the
        changelog, so a restarted worker starts from at least what subscribers have seen and never
        publishes an older state after it. A crash between the two leaves a state persisted but not
        published; its events come back as duplicates in the packs replayed after a restart, so a
        duplicate from a pack the previous owner may have handled republishes its member's state.
        The store takes a state only once the changelog has it.
        """
        started = time.perf_counter()
        self.states.batch_started()
        try:
            stores = await self.states.partitions({pack.partition for pack in batch})
            held = [pack for pack in batch if pack.partition in stores]
            observed = self.metrics.batch()
            replay_ends = await self._replay_ends({pack.partition for pack in held})
            changed, replayed = self._join(held, stores, replay_ends, observed)
            changelog = self.settings.changelog_topic
            encoded = {key: records.encode_state(after) for key, (_, after, _) in changed.items()}
            refused = await self.ingest.write_states(
                changelog, [(p, key, encoded[key]) for key, (_, _, p) in changed.items()]
            )
            if refused:
                await self._refuse_states(held, refused, changed)
            self._keep(stores, changed, encoded)
            published = {key: (after, p) for key, (_, after, p) in changed.items()}
            republished: dict[int, list[bytes]] = {}
            for key, partition in replayed.items():
                if key not in published:
                    republished.setdefault(partition, []).append(key)
            for partition, keys in republished.items():
                published.update((key, (state, partition)) for key, state in stores[partition].get_many(keys).items())
            failed = await self.ingest.write_states(
                self.settings.output_topic, [(p, key, encode_state(state)) for key, (state, p) in published.items()]
            )
            if failed:
                raise DeliveryError(f"{len(failed)} states could not be published: {failed[0][1]!r}")
            observed.commit(time.perf_counter() - started)
        finally:
            self.states.batch_done()

    def _keep(
        self,
        stores: dict[int, Any],
        changed: dict[bytes, tuple[MemberState | None, MemberState, int]],
        encoded: dict[bytes, bytes],
    ) -> None:
        """Put the persisted states into their partitions' stores, with how far the changelog now goes."""
        by_partition: dict[int, dict[bytes, tuple[MemberState | None, MemberState]]] = {}
        for key, (before, after, partition) in changed.items():
            by_partition.setdefault(partition, {})[key] = (before, after)
        acked = self.ingest.acked_ends()
        changelog = self.settings.changelog_topic
        for partition, changes in by_partition.items():
            restoring = partition in self.states.to_restore  # restored_to is the restore's to move then
            stores[partition].apply(changes, None if restoring else acked.get((changelog, partition)), encoded)

    def _join(
        self, batch: list[Any], stores: dict[int, Any], replay_ends: dict[int, int], observed: BatchMetrics
    ) -> tuple[dict[bytes, tuple[MemberState | None, MemberState, int]], dict[bytes, int]]:
        """
        Join a batch's events into their members' states (the stores are not touched yet).

        Returns:
            The changed members' states before the batch and after it, with their partitions, and the
            members of duplicates from packs below the replay ends (to republish).

        """
        # Per member: its state before this batch and after the batch's events so far. A state is
        # bounded (at most 32 event ids or a 2 KiB filter: stream/domain/digest.py), so joining
        # each event into it costs the same for a member with 25,000 events as for one with 3.
        decoded = [(pack, records.decode_pack(pack.value)) for pack in batch]
        # Each partition's members are looked up at once: one multi-get for a disk store.
        wanted: dict[int, set[bytes]] = {}
        for pack, items in decoded:
            wanted.setdefault(pack.partition, set()).update(item.member_id.encode() for item in items)
        held: dict[bytes, MemberState] = {}
        for partition, keys in wanted.items():
            held.update(stores[partition].get_many(list(keys)))
        joined: dict[bytes, list[Any]] = {}
        changed_in: dict[bytes, int] = {}
        replayed: dict[bytes, int] = {}
        for pack, items in decoded:
            partition = pack.partition
            replay = pack.offset < replay_ends.get(partition, _UNKNOWN_END)
            for item in items:
                key = item.member_id.encode()
                entry = joined.get(key)
                if entry is None:
                    before: MemberState | None = held.get(key)
                    entry = joined[key] = [before, before]
                current = entry[1]
                after = resolve(current, item)
                if after is current:
                    observed.duplicate(item)
                    if replay:
                        replayed[key] = partition
                    continue
                entry[1] = after
                observed.applied(item, current, after)
                changed_in[key] = partition
        changed: dict[bytes, tuple[MemberState | None, MemberState, int]] = {}
        for key, partition in changed_in.items():
            before, joined_state = joined[key]
            changed[key] = (before, joined_state, partition)
        return changed, replayed

    async def _refuse_states(
        self,
        batch: list[Any],
        refused: list[tuple[Record, BaseException]],
        changed: dict[bytes, tuple[MemberState | None, MemberState, int]],
    ) -> None:
        # A state the changelog will not take (too large even compressed) cannot be kept: the
        # member stays as it was before this batch, and this batch's events of it are
        # dead-lettered, with where they lie and why. Anything else is not ours to decide.
        too_large = {record[1]: error for record, error in refused if is_too_large(error)}
        if len(too_large) < len(refused):
            raise DeliveryError(f"{len(refused)} states could not be persisted: {refused[0][1]!r}")
        for key in too_large:
            del changed[key]  # type: ignore[arg-type]
        letters: list[Record] = []
        for message in batch:
            for item in records.decode_pack(message.value):
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
            # Asked of a consumer that is in no group: the resolver's own may be in the very
            # rebalance this batch is being finished for.
            topic = self.settings.by_member_topic
            try:
                ends = await asyncio.wait_for(self.ingest.end_offsets(topic, missing), _END_OFFSETS_TIMEOUT)
                self.replay_ends.update(ends)
            except (KafkaError, TimeoutError) as error:  # unknown: duplicates republish until the next assignment
                log.warning("end offsets of %s unknown (%r); duplicates republish their states", topic, error)
                self.replay_ends.update(dict.fromkeys(missing, _UNKNOWN_END))
        return self.replay_ends

    def ready(self) -> Verdict:
        """Return whether this worker resolves events now (``/readyz``)."""
        return readiness(
            self.resolver, lambda: len(self.states), self.states.records_to_restore, self.settings.by_member_topic
        )

    async def say_when_ready(self) -> None:
        """Say, in one line, when the worker becomes ready."""
        self.ready_log.observe(self.ready())

    async def on_assigned(self, partitions: set[int]) -> None:
        """
        At every assignment: hold and restore exactly the re-key topic's partitions assigned.

        What another worker may have handled is measured anew (replay ends) too.
        """
        self.replay_ends.clear()
        await self.states.assign(partitions)

    async def measure_lag(self) -> None:
        """
        Set statusflow_consumer_lag for the partitions this worker holds now.

        Right after an assignment a partition's highwater (or position) is not known yet: it is
        skipped until it is.
        """
        consumer = self.resolver.consumer
        self.metrics.consumer_lag.clear()  # partitions lost in a rebalance must not linger
        await self.ingest.report_lag()
        if consumer is None:
            return
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
    watchdog = Watchdog(app, lambda: handlers.states.records_to_restore())  # noqa: PLW0108 - handlers comes next
    handlers = Handlers(app, settings, registry, watchdog)

    app.add_dependency(handlers.ingest)  # started and stopped with the app
    app.add_dependency(handlers.states)
    app.add_dependency(Correlation(settings, handlers.metrics, handlers.ingest))  # the dispatch join, after ingest
    app.add_dependency(handlers.resolver)  # after the store and the writers it hands its batches to
    app.add_dependency(watchdog)  # a crashed app or service ends the process

    app.timer(interval=5.0)(handlers.guard.task("measure_lag")(handlers.measure_lag))
    app.timer(interval=1.0)(handlers.guard.task("ready_log")(handlers.say_when_ready))
    _serve(app, registry, lambda: liveness(watchdog.find_crash), handlers.ready)
    return app


def _serve(
    app: faust.App, registry: CollectorRegistry, alive: Callable[[], Verdict], ready: Callable[[], Verdict]
) -> None:
    """Add the worker's web pages: /metrics, and /healthz and /readyz for probes."""

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:  # noqa: ARG001 - Faust's page signature
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:  # noqa: ARG001 - Faust's page signature
        return _probe(web, alive())

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:  # noqa: ARG001 - Faust's page signature
        return _probe(web, ready())


def _probe(web: Any, verdict: Verdict) -> Any:
    return web.json(verdict.document(), status=200 if verdict.ok else 503)
