"""
The Faust app: raw topics -> re-key by member -> resolve into a table -> publish changes.

Two hops, because raw records are not keyed by member (a SendGrid body holds many members):

1. ``ingest``: decode each raw record; dead-letter what cannot be resolved (original bytes,
   reason, topic/partition/offset); forward each event keyed by member_id.
2. ``resolve_members`` (concurrency 1: it updates a table, faust-streaming#606): apply the core's
   join to the member's state in a changelog-backed table; publish the state only if it changed.

Delivery is at-least-once: Faust flushes the producer before it commits offsets, so a crash
replays records, and the join makes every replay a no-op (README, "Delivery guarantee").
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson
from faust.serializers import codecs
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from stream import records
from stream.codec import encode_state
from stream.config import Settings
from stream.domain.model import MemberState
from stream.domain.precedence import resolve
from stream.metrics import Metrics, MembersByStatus
from stream.resolver import DeadLetter, events_of


class _StateCodec(codecs.Codec):  # type: ignore[misc]  # faust is untyped
    """Table values: MemberState <-> the compact changelog record."""

    def _dumps(self, obj: Any) -> bytes:
        return records.encode_state(obj)

    def _loads(self, s: bytes) -> Any:
        return records.decode_state(s)


codecs.register("statusflow_state", _StateCodec())


class _StateValue:
    """
    The table's value type, as Faust wants to see one: it names our codec, and takes back
    what the codec already turned into a MemberState (Faust calls ``from_data`` on recovery).
    """

    class _options:  # noqa: N801 - the attribute name Faust looks up
        serializer = "statusflow_state"

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:  # noqa: ARG003 - Faust's signature
        return data

_RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the Faust app for ``settings``; metrics go to ``registry`` (a fresh one by default)."""
    registry = registry or CollectorRegistry()
    app = faust.App(
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
    )
    metrics = Metrics(registry)
    lag = Gauge("statusflow_consumer_lag", "Records not yet consumed, per input partition.", ["topic", "partition"], registry=registry)
    events_topic = app.topic(settings.events_topic, **_RAW)
    sendgrid_topic = app.topic(settings.sendgrid_topic, **_RAW)
    by_member = app.topic(settings.by_member_topic, partitions=settings.partitions, internal=True, **_RAW)
    states = app.Table("member-states", partitions=settings.partitions, key_type=bytes, value_type=_StateValue)
    registry.register(MembersByStatus(lambda: list(states.values())))

    async def send(topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        # Straight to Faust's Kafka producer: Topic.send/send_soon and table writes go through
        # Faust's ProducerBuffer one message at a time (measured: ~0.4 ms each here, the whole
        # budget). It is the producer Faust flushes before every offset commit, so
        # at-least-once holds as it does for Faust's own sends.
        await app.producer.send(topic, key, value, partition=partition, timestamp=None, headers=None)

    async def ingest(stream: faust.StreamT, record_format: str) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_window):
            for event in batch:
                message = event.message
                for item in events_of(event.value, record_format):
                    if isinstance(item, DeadLetter):
                        metrics.dead_letter(item.error)
                        origin = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
                        document = DeadLetter(item.raw, item.error, origin).document()
                        await send(settings.dlq_topic, message.key, orjson.dumps(document))
                    else:
                        await send(settings.by_member_topic, item.member_id.encode(), records.encode_event(item))

    @app.agent(events_topic, concurrency=1)
    async def ingest_envelopes(stream: faust.StreamT) -> None:
        await ingest(stream, "envelope")

    @app.agent(sendgrid_topic, concurrency=1)
    async def ingest_sendgrid(stream: faust.StreamT) -> None:
        await ingest(stream, "sendgrid")

    @app.agent(by_member, concurrency=1)
    async def resolve_members(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_window):
            started = time.perf_counter()
            changed: dict[bytes, tuple[MemberState, int]] = {}
            for event in batch:
                item = records.decode_event(event.value)
                before: MemberState | None = states.data.get(event.key)
                after = resolve(before, item)
                if after is before:
                    metrics.duplicate(item)
                    continue
                states.data[event.key] = after  # the store itself; the changelog write follows
                metrics.applied(item, before, after)
                changed[event.key] = (after, event.message.partition)
            # One changelog record and one publication per member and batch: its net change.
            changelog = states.changelog_topic.get_topic_name()
            for key, (state, partition) in changed.items():
                _remember_partition(states, key, partition)
                await send(changelog, key, records.encode_state(state), partition)
                await send(settings.output_topic, key, encode_state(state))
            elapsed = (time.perf_counter() - started) / len(batch)
            for _ in batch:
                metrics.processing.observe(elapsed)

    @app.timer(interval=5.0)
    async def measure_lag() -> None:
        consumer = app.consumer
        lag.clear()  # partitions this worker lost in a rebalance must not linger
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            if position is not None:
                lag.labels(tp.topic, str(tp.partition)).set(max(0, consumer.highwater(tp) - position))

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
