"""
Where one partition's member states live: in memory, or on disk in RocksDB.

No Kafka here: a partition store holds states by member key, the count of its members per
AdditionStatus (kept as states change, so the ``statusflow_members`` gauge never counts a table at
scrape time), and ``restored_to``: the changelog offset before which every record is reflected in
it. The Kafka side (``stream.kafka.store``) restores a partition from that offset on, so a disk
store that survives a restart replays only what was written since, and a memory store all of it.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import orjson

from stream import records
from stream.domain.model import MemberState

Change = tuple[MemberState | None, MemberState]  # (before, after) of one member


class PartitionStore(Protocol):
    """One partition's member states, with their tally and how far the changelog is reflected."""

    restored_to: int | None
    tally: Tally[int]

    def get(self, key: bytes) -> MemberState | None:
        """Return a member's state, or None."""

    def get_many(self, keys: list[bytes]) -> dict[bytes, MemberState]:
        """Return the states of those of ``keys`` held (one lookup for a whole batch's members)."""

    def apply(
        self, changes: Mapping[bytes, Change], restored_to: int | None = None, encoded: Mapping[bytes, bytes] = {}
    ) -> None:
        """
        Replace states (``after`` of each change) and move ``restored_to`` forward, as one step.

        ``encoded`` may hold the changelog records (``records.encode_state``) of some ``after``
        states, already made for the changelog write: a store that keeps bytes takes them as they are.
        """

    def values(self) -> Iterator[MemberState]:
        """Yield every state held."""

    def clear(self) -> None:
        """Forget every state (the changelog was recreated or truncated under us)."""

    def close(self) -> None:
        """Release what the store holds open."""

    def __len__(self) -> int:
        """Return the number of members held."""


def _count(tally: Tally[int], changes: Mapping[bytes, Change]) -> None:
    for before, after in changes.values():
        if before is not None:
            tally[before.status.outcome.code] -= 1
        tally[after.status.outcome.code] += 1


class MemoryPartition:
    """States in a dict: fast, and gone with the process (restored from the whole changelog)."""

    def __init__(self) -> None:
        self.restored_to: int | None = None
        self.tally: Tally[int] = Tally()
        self._states: dict[bytes, MemberState] = {}

    def get(self, key: bytes) -> MemberState | None:
        """Return a member's state, or None."""
        return self._states.get(key)

    def get_many(self, keys: list[bytes]) -> dict[bytes, MemberState]:
        """Return the states of those of ``keys`` held."""
        states = self._states
        return {key: states[key] for key in keys if key in states}

    def apply(
        self,
        changes: Mapping[bytes, Change],
        restored_to: int | None = None,
        encoded: Mapping[bytes, bytes] = {},  # noqa: ARG002 - states are kept as objects here
    ) -> None:
        """Replace states and move ``restored_to`` forward."""
        _count(self.tally, changes)
        self._states.update((key, after) for key, (_, after) in changes.items())
        if restored_to is not None:
            self.restored_to = max(self.restored_to or 0, restored_to)

    def values(self) -> Iterator[MemberState]:
        """Yield every state held."""
        return iter(list(self._states.values()))

    def clear(self) -> None:
        """Forget every state."""
        self._states.clear()
        self.tally.clear()
        self.restored_to = None

    def close(self) -> None:
        """Nothing to release: the dict goes with this object."""
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)


# Member keys are UTF-8 member ids; 0xFF never occurs in UTF-8, so this key cannot be a member's.
_META = b"\xff\xffstatusflow-partition-meta"
_MIB = 1024 * 1024
# States written last, kept decoded: a member's events come close together (a send, its delivery,
# an open), and decoding the changelog record again was the disk store's largest cost per event.
# A few thousand small states per partition: megabytes, not the store.
RECENT_STATES = 4096


class OpenError(Exception):
    """A partition's RocksDB could not be opened (most often: another process still holds it)."""


class RocksPartition:
    """
    States in RocksDB under ``path``: bounded memory, and kept across restarts.

    Each ``apply`` is one RocksDB write batch holding the states *and* the meta record
    (``restored_to`` and the tally), so after a crash the two always agree: the store never
    claims to reflect a changelog record whose state it lost.
    """

    def __init__(self, path: str, cache: Any = None) -> None:
        from rocksdict import BlockBasedOptions, Options, Rdict  # noqa: PLC0415 - only the disk store needs it

        os.makedirs(path, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)  # noqa: FBT003 - rocksdict's setter
        # RocksDB's defaults (64 MiB memtables, up to 2 each) times the partitions would be most
        # of a small worker's memory: a few MiB per partition and one shared block cache instead.
        options.set_write_buffer_size(4 * _MIB)
        options.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        if cache is not None:
            table.set_block_cache(cache)
        # A member's first event looks for a state that is not there: without a filter that read
        # searches every level's index. 10 bits per key (about 1.2 MB per million members) lets
        # RocksDB skip the files that cannot hold the key (measured: hits 7.8 -> 5.1 us).
        table.set_bloom_filter(10, False)  # noqa: FBT003 - rocksdict's signature: full filter, not block-based
        options.set_block_based_table_factory(table)
        try:
            self._db = Rdict(path, options)
        except Exception as error:  # rocksdict raises plain Exceptions: lock held, corruption
            raise OpenError(f"cannot open the state store {path}: {error}") from error
        self._recent: dict[bytes, MemberState] = {}
        meta = self._db.get(_META)
        document = orjson.loads(meta) if meta is not None else {}
        self.restored_to: int | None = document.get("restored_to")
        self.tally: Tally[int] = Tally({int(code): n for code, n in document.get("tally", {}).items()})

    def get(self, key: bytes) -> MemberState | None:
        """Return a member's state, or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[bytes]) -> dict[bytes, MemberState]:
        """Return the states of those of ``keys`` held: the recent ones, then one multi-get for the rest."""
        recent = self._recent
        found = {key: recent[key] for key in keys if key in recent}
        rest: list[Any] = [key for key in keys if key not in found]
        if rest:
            raws: list[bytes | None] = self._db.get(rest)  # type: ignore[assignment] # a list for a list
            for key, raw in zip(rest, raws, strict=True):
                if raw is not None:
                    found[key] = records.decode_state(raw)
        return found

    def apply(
        self, changes: Mapping[bytes, Change], restored_to: int | None = None, encoded: Mapping[bytes, bytes] = {}
    ) -> None:
        """Replace states and move ``restored_to`` forward, in one write batch."""
        from rocksdict import WriteBatch  # noqa: PLC0415

        _count(self.tally, changes)
        if restored_to is not None:
            self.restored_to = max(self.restored_to or 0, restored_to)
        batch = WriteBatch(raw_mode=True)
        recent = self._recent
        for key, (_, after) in changes.items():
            raw = encoded.get(key)
            batch.put(key, records.encode_state(after) if raw is None else raw)
            recent.pop(key, None)
            recent[key] = after
        while len(recent) > RECENT_STATES:
            del recent[next(iter(recent))]  # the oldest written
        batch.put(_META, self._meta())
        self._db.write(batch)

    def _meta(self) -> bytes:
        tally = {str(code): n for code, n in self.tally.items() if n}
        return orjson.dumps({"restored_to": self.restored_to, "tally": tally})

    def values(self) -> Iterator[MemberState]:
        """Yield every state held (decoded as it goes)."""
        for key, raw in self._db.items():
            if key != _META:
                yield records.decode_state(raw)

    def clear(self) -> None:
        """Forget every state."""
        from rocksdict import WriteBatch  # noqa: PLC0415

        batch = WriteBatch(raw_mode=True)
        for key in list(self._db.keys()):
            batch.delete(key)
        self._db.write(batch)
        self._recent.clear()
        self.tally.clear()
        self.restored_to = None

    def close(self) -> None:
        """Flush and close the database, releasing its lock for the next owner."""
        self._db.close()

    def __len__(self) -> int:
        return sum(self.tally.values())


def block_cache(size_mib: int) -> Any:
    """Return one LRU block cache for all of a process's RocksDB partitions."""
    from rocksdict import Cache  # noqa: PLC0415

    return Cache(size_mib * _MIB)
