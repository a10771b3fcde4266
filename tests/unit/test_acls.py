"""The worker's ACLs as data, and the kafka-acls commands made from them."""

from __future__ import annotations

from stream.config import Settings
from stream.kafka.acls import Acl, acl_commands, worker_acls
from stream.providers.registry import FORMATS


def test_the_worker_reads_raw_and_internal_topics_and_writes_only_what_it_produces() -> None:
    """Read on raw, dispatch, re-key, changelog and leader topics; Write on re-key, changelog, output, dead letters."""
    acls = worker_acls(Settings(app_id="sf"), creates_topics=False)

    reads = {a.name for a in acls if a.operation == "Read" and a.kind == "topic"}
    writes = {a.name for a in acls if a.operation == "Write"}
    groups = {a.name for a in acls if a.kind == "group"}

    expected = {
        "message-events",
        *(f"message-events.{name}" for name in FORMATS if name != "envelope"),
        "message-dispatches",
        "sf-events-by-member",
        "sf-events-by-message",
        "sf-dispatch-hold-changelog",
        "sf-member-states-changelog",
        "sf-__assignor-__leader",
    }
    assert expected == reads
    assert {
        "sf-events-by-member",
        "sf-events-by-message",
        "sf-dispatch-hold-changelog",
        "sf-member-states-changelog",
        "campaign-member-status",
        "message-events.dlq",
    } == writes
    assert {"sf", "sf-ingest", "sf-correlate"} == groups
    assert not any(a.operation == "Create" for a in acls)


def test_create_is_granted_only_to_a_worker_that_creates_topics() -> None:
    """With creates_topics, Create on each of its topics and nothing broader (no cluster ACL)."""
    acls = worker_acls(Settings(app_id="sf"))

    assert len(FORMATS) + 8 == len([a for a in acls if a.operation == "Create" and a.kind == "topic"])
    assert not any(a.kind == "cluster" for a in acls)


def test_one_kafka_acls_command_per_operation_and_resource_kind() -> None:
    """Acls group into kafka-acls argument lists, one per (operation, kind)."""
    commands = acl_commands([Acl("Read", "topic", "a"), Acl("Read", "topic", "b"), Acl("Read", "group", "g")], "User:x")

    assert [
        ["--add", "--allow-principal", "User:x", "--operation", "Read", "--topic", "a", "--topic", "b"],
        ["--add", "--allow-principal", "User:x", "--operation", "Read", "--group", "g"],
    ] == commands
