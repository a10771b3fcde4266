"""
The worker's member states: one partition store per assigned partition, restored from the changelog.

This replaces Faust's Table. The resolve agent already wrote the changelog itself (persist, then
publish) and read the table's dict directly; what Faust still did was the recovery, record by
record (about 9,300 records/s), and it could wait for ever on one changelog partition after a
rebalance (the "Known issue" of issue 9). Here:

- at every assignment, each partition of the re-key topic this worker holds is restored from its
  changelog partition, from the partition store's ``restored_to`` (a disk store kept across
  restarts: only what was written since; a fresh memory store: all of it) to the end offset, in
  batches decoded straight into the store;
- a record is *joined* into what the store holds (``precedence.merge``), not written over it: the
  states are a join over events, so a late write of a worker that lost the partition can never
  take a member back, and reading a record twice changes nothing;
- the resolver (``MemberResolver``) waits for its partitions' restore before it joins anything into them; a
  partition that left this worker is kept until the batch in hand is done, then closed (for the
  disk store: its RocksDB lock released for the next owner on this machine).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from stream import records
from stream.config import Settings
from stream.domain.model import MemberState
from stream.domain.precedence import merge
from stream.kafka.client import kafka_client_options
from stream.kafka.topics import CHANGELOG_MAX_BYTES
from stream.metrics import Metrics
from stream.partitions import Change, MemoryPartition, OpenError, PartitionStore, RocksPartition, block_cache
from stream.watchdog import fatal

log = logging.getLogger("statusflow")

_RESTORE_RECORDS = 20_000  # per fetch: decode work between two yields to the event loop
_OPEN_RETRY = 0.5  # seconds between attempts at a partition another process still holds
_OPEN_PATIENCE = 120.0  # past this, a partition that cannot be opened ends the worker


def store_kind(url: str) -> str:
    """Return ``memory`` or ``rocksdb`` for a ``--store`` URL, or raise ValueError naming the choices."""
    kind = url.split(":", 1)[0].lower()
    if kind not in {"memory", "rocksdb"}:
        raise ValueError(f"store {url!r} is not known: use memory:// or rocksdb://")
    return kind


class MemberStore(Service):
    """Member states of the partitions this worker holds (README, "State stores")."""

    def __init__(self, settings: Settings, metrics: Metrics, **kwargs: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self.kind = store_kind(settings.store)
        self.topic = settings.changelog_topic
        self.held: dict[int, PartitionStore] = {}
        self.leaving: dict[int, PartitionStore] = {}
        self.to_restore: dict[int, int] = {}  # partition -> changelog records still to read
        self.restored = asyncio.Event()
        self.restored.set()
        self.in_batch = False
        self._restore_task: asyncio.Task[None] | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._cache: Any = block_cache(settings.rocksdb_cache_mib) if self.kind == "rocksdb" else None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Open the changelog reader: no group, assigned partitions only, never committing."""
        self._reader = AIOKafkaConsumer(
            **kafka_client_options(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=CHANGELOG_MAX_BYTES,
            fetch_max_bytes=4 * CHANGELOG_MAX_BYTES,
        )
        await self._reader.start()

    async def on_stop(self) -> None:
        """Stop restoring, and close every partition store (the disk store flushes)."""
        if self._restore_task is not None:
            self._restore_task.cancel()
        if self._reader is not None:
            await self._reader.stop()
        for partition in [*self.held.values(), *self.leaving.values()]:
            partition.close()
        self.held.clear()
        self.leaving.clear()

    # -- assignment ---------------------------------------------------------------------------

    async def assign(self, partitions: set[int]) -> None:
        """
        Hold exactly ``partitions`` from now on, and restore each from its changelog.

        Kept partitions are restored too: between two assignments another worker may have held
        one and written its changelog (a no-op read when nobody did).
        """
        for partition in set(self.held) - partitions:
            self.leaving[partition] = self.held.pop(partition)
        if not self.in_batch:
            self._close_leaving()
        if self._restore_task is not None:
            self._restore_task.cancel()  # restored_to keeps what it got through; the next one goes on
        self.to_restore = dict.fromkeys(partitions, 0)
        self.restored.clear()
        self._restore_task = asyncio.ensure_future(self._restore_all(sorted(partitions)))

    def batch_started(self) -> None:
        """Note that the resolver starts a batch: partitions leaving now stay open until it ends."""
        self.in_batch = True

    def batch_done(self) -> None:
        """Note that the batch is done: close the partitions that left this worker."""
        self.in_batch = False
        self._close_leaving()

    def _close_leaving(self) -> None:
        for number, partition in list(self.leaving.items()):
            partition.close()  # held again already? Then a fresh store object took its place
            del self.leaving[number]

    async def partitions(self, numbers: Iterable[int]) -> dict[int, PartitionStore]:
        """Return the stores of ``numbers`` once restored; a partition no longer held is left out."""
        wanted = set(numbers)
        while wanted & self.to_restore.keys() and not self.restored.is_set():
            await self.restored.wait()  # cleared again by a new assignment: look again
        found = {n: self.held[n] for n in wanted if n in self.held}
        found.update((n, self.leaving[n]) for n in wanted if n not in found and n in self.leaving)
        return found

    # -- restore --------------------------------------------------------------------------------

    async def _restore_all(self, numbers: list[int]) -> None:
        try:
            for number in numbers:
                if number not in self.held:
                    self.held[number] = await self._open(number)
            await self._restore(numbers)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a worker with half its states must not run on
            fatal("the state restore", error)
            return
        self.to_restore.clear()
        self.restored.set()

    async def _open(self, number: int) -> PartitionStore:
        if self.kind == "memory":
            return MemoryPartition()
        path = os.path.join(self.settings.data_dir, self.settings.app_id, "member-states", f"p{number}")
        waited = 0.0
        while True:
            try:
                return RocksPartition(path, self._cache)
            except OpenError:
                # Another process on this machine held the partition until its batch ended.
                if waited >= _OPEN_PATIENCE:
                    raise
                await asyncio.sleep(_OPEN_RETRY)
                waited += _OPEN_RETRY

    async def _restore(self, numbers: list[int]) -> None:
        reader = self._reader
        assert reader is not None  # noqa: S101 - started in on_start
        tps = {number: TopicPartition(self.topic, number) for number in numbers}
        if not tps:
            return
        reader.assign(list(tps.values()))
        begins = await reader.beginning_offsets(list(tps.values()))
        ends = await reader.end_offsets(list(tps.values()))
        pending: dict[TopicPartition, int] = {}
        for number, tp in tps.items():
            store = self.held[number]
            start = store.restored_to
            if start is not None and not begins[tp] <= start <= ends[tp]:
                log.warning(
                    "%s[%d] holds offsets %d-%d, the state store was restored to %d: restoring it afresh",
                    self.topic, number, begins[tp], ends[tp], start,
                )  # fmt: skip
                store.clear()
                start = None
            start = begins[tp] if start is None else start
            if start >= ends[tp]:
                store.apply({}, restored_to=ends[tp])
                self.to_restore.pop(number, None)
                continue
            reader.seek(tp, start)
            pending[tp] = ends[tp]
            self.to_restore[number] = ends[tp] - start
        for tp in set(tps.values()) - pending.keys():
            reader.pause(tp)
        while pending:
            fetched = await reader.getmany(*pending, timeout_ms=1000, max_records=_RESTORE_RECORDS)
            for tp, messages in fetched.items():
                if messages:
                    self._join_records(self.held[tp.partition], messages)
                    self.metrics.restored_records.inc(len(messages))
                position = await reader.position(tp)
                self.to_restore[tp.partition] = max(0, pending[tp] - position)
                if position >= pending[tp]:
                    reader.pause(tp)
                    del pending[tp]
                    self.to_restore.pop(tp.partition, None)
            await asyncio.sleep(0)

    @staticmethod
    def _join_records(store: PartitionStore, messages: list[Any]) -> None:
        chunk: dict[bytes, MemberState] = {}
        for message in messages:
            if message.value is None:  # never written by us; nothing to join
                continue
            try:
                state = records.decode_state(message.value)
            except records.StateFormatError as error:
                raise records.StateFormatError(
                    f"{message.topic}[{message.partition}] offset {message.offset}: {error}"
                ) from error
            held = chunk.get(message.key)
            chunk[message.key] = state if held is None else merge(held, state)
        changes: dict[bytes, Change] = {}
        stored = store.get_many(list(chunk))
        for key, state in chunk.items():
            before = stored.get(key)
            changes[key] = (before, state if before is None or before == state else merge(before, state))
        store.apply(changes, restored_to=messages[-1].offset + 1)

    # -- reading ----------------------------------------------------------------------------------

    def records_to_restore(self) -> int | None:
        """Return the changelog records still to read, or None when no restore is running."""
        return None if self.restored.is_set() else sum(self.to_restore.values())

    def tally(self) -> Mapping[int, int]:
        """Return the members held, per AdditionStatus code."""
        total: Tally[int] = Tally()
        for partition in self.held.values():
            total.update(partition.tally)
        return total

    def values(self) -> Iterator[MemberState]:
        """Yield every state this worker holds."""
        for partition in list(self.held.values()):
            yield from partition.values()

    def __len__(self) -> int:
        return sum(len(partition) for partition in self.held.values())
