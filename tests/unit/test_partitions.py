"""Partition stores, memory and RocksDB: states, tallies and how far the changelog is reflected."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from stream import partitions, records
from stream.codec import decode_event
from stream.domain.model import MemberState
from stream.domain.precedence import resolve
from stream.partitions import MemoryPartition, OpenError, PartitionStore, RocksPartition


def state(member: str, *statuses: str) -> MemberState:
    """Return a member's state after SMPP events with ``statuses``."""
    current: MemberState | None = None
    for number, status in enumerate(statuses):
        event = {"member_id": member, "event_id": f"{member}-{number}", "source": "smpp", "status": status}
        current = resolve(current, decode_event(orjson.dumps({**event, "occurred_at": 1_735_689_600})))
    assert current is not None
    return current


STORES: dict[str, Callable[[Path], PartitionStore]] = {
    "memory": lambda _: MemoryPartition(),
    "rocksdb": lambda path: RocksPartition(str(path / "p0")),
}


@pytest.mark.parametrize("kind", STORES)
def test_a_store_holds_states_counts_them_and_remembers_how_far_the_changelog_went(kind: str, tmp_path: Path) -> None:
    """Apply replaces states, moves each member's count from its old status to its new one, and moves restored_to forward only."""
    store = STORES[kind](tmp_path)
    sent, delivered = state("m1", "ENROUTE"), state("m1", "ENROUTE", "DELIVRD")

    store.apply({b"m1": (None, sent), b"m2": (None, state("m2", "UNDELIV"))}, restored_to=7)
    store.apply({b"m1": (sent, delivered)}, restored_to=5)  # an older end never moves it back

    assert delivered == store.get(b"m1")
    assert store.get(b"nobody") is None
    assert {2020: 1, 5201: 1} == {code: n for code, n in store.tally.items() if n}
    assert 7 == store.restored_to
    assert 2 == len(store)
    assert {"m1", "m2"} == {s.member_id for s in store.values()}
    store.clear()
    assert 0 == len(store)
    assert store.restored_to is None
    assert [] == list(store.values())
    store.close()


def test_a_disk_store_keeps_states_tally_and_offset_across_a_restart(tmp_path: Path) -> None:
    """What a restarted worker reopens is what it wrote: so it restores only the changelog written since."""
    first = RocksPartition(str(tmp_path / "p3"))
    first.apply({b"m1": (None, state("m1", "DELIVRD"))}, restored_to=120)
    first.close()

    again = RocksPartition(str(tmp_path / "p3"))

    assert (120, 1, "m1") == (again.restored_to, again.tally[2020], again.get(b"m1").member_id)  # type: ignore[union-attr]
    again.close()


def test_a_disk_store_another_process_holds_cannot_be_opened_twice(tmp_path: Path) -> None:
    """RocksDB's lock: the next owner waits for the last one to close (stream.kafka.store retries)."""
    held = RocksPartition(str(tmp_path / "p1"))
    with pytest.raises(OpenError, match="cannot open the state store"):
        RocksPartition(str(tmp_path / "p1"))
    held.close()
    RocksPartition(str(tmp_path / "p1")).close()


def test_a_disk_store_keeps_only_the_latest_written_states_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recent states come back without decoding; beyond the bound they come from RocksDB, equal."""
    monkeypatch.setattr(partitions, "RECENT_STATES", 2)
    store = RocksPartition(str(tmp_path / "p0"))
    states = {f"m{n}".encode(): state(f"m{n}", "DELIVRD") for n in range(3)}
    for key, value in states.items():
        store.apply({key: (None, value)})

    assert [b"m1", b"m2"] == list(store._recent)
    assert all(states[key] == store.get(key) for key in states)
    store.close()


@pytest.mark.parametrize("kind", STORES)
def test_a_batch_lookup_finds_what_single_lookups_find(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_many (one multi-get per batch) returns each held state, recent or on disk, and leaves out the rest."""
    monkeypatch.setattr(partitions, "RECENT_STATES", 2)
    store = STORES[kind](tmp_path)
    statuses = ("ENROUTE", "DELIVRD", "UNDELIV", "EXPIRED", "ACCEPTD")
    states = {f"m{n}".encode(): state(f"m{n}", status) for n, status in enumerate(statuses)}
    store.apply({key: (None, value) for key, value in states.items()})
    keys = [b"m4", b"nobody", b"m0", b"m2", b"m0"]

    found = store.get_many(keys)

    assert {key: states[key] for key in (b"m0", b"m2", b"m4")} == found
    assert all(found.get(key) == store.get(key) for key in keys)
    store.close()


def test_a_disk_store_keeps_the_changelog_records_it_is_given(tmp_path: Path) -> None:
    """The resolver hands apply the records it wrote to the changelog: those very bytes are stored, not encoded again."""
    store = RocksPartition(str(tmp_path / "p0"))
    delivered = state("m1", "DELIVRD")
    # Compressed although small: encode_state would not compress it, so bytes encoded again would differ.
    written = b"z" + zlib.compress(records.encode_state(delivered))
    store.apply({b"m1": (None, delivered)}, encoded={b"m1": written})
    store.close()

    again = RocksPartition(str(tmp_path / "p0"))

    assert written == again._db.get(b"m1")
    assert delivered == again.get(b"m1")
    again.close()
