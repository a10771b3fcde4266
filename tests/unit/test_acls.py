"""The worker's ACLs as data, and the kafka-acls commands made from them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stream.config import Secret, Settings
from stream.kafka.acls import Acl, acl_commands, certificate_subject, principal, worker_acls
from stream.kafka.protocol import NOT_PROVIDED, operations
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
    assert {"sf", "sf-ingest", "sf-resolve", "sf-correlate"} == groups
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


def test_an_authorized_operations_field_decodes_to_the_operations_it_grants() -> None:
    """Bit n is Kafka's AclOperation n; Kafka's 'not provided' value is no answer at all, not 'nothing'."""
    read_describe = (1 << 3) | (1 << 8)
    everything = 0b110111111000  # what a super user gets for a topic

    assert frozenset({"Read", "Describe"}) == operations(read_describe)
    assert frozenset() == operations(0)
    every_topic_operation = {
        "Read",
        "Write",
        "Create",
        "Delete",
        "Alter",
        "Describe",
        "DescribeConfigs",
        "AlterConfigs",
    }
    assert frozenset(every_topic_operation) == operations(everything)
    assert operations(NOT_PROVIDED) is None


def test_the_principal_is_named_as_acls_name_it() -> None:
    """SASL: User:<name>; no SASL and no client certificate: User:ANONYMOUS."""
    sasl = Settings(security_protocol="SASL_SSL", sasl_username="sf", sasl_password=Secret("pw"))

    assert "User:sf" == principal(sasl)
    assert "User:ANONYMOUS" == principal(Settings())
    assert "User:ANONYMOUS" == principal(Settings(security_protocol="SSL"))


def test_a_client_certificate_names_its_subject_most_specific_first(tmp_path: Path) -> None:
    """Kafka's default SSL principal is the subject in RFC 2253 order: User:CN=...,O=..."""
    key, cert = tmp_path / "c.key", tmp_path / "c.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /C=DK/O=statusflow/CN=worker-1"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    settings = Settings(security_protocol="SSL", ssl_certfile=str(cert), ssl_keyfile=str(key))

    assert "CN=worker-1,O=statusflow,C=DK" == certificate_subject(str(cert))
    assert "User:CN=worker-1,O=statusflow,C=DK" == principal(settings)
    assert certificate_subject(str(key)) is None
