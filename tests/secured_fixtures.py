"""
Fixtures for tests against a secured local Kafka (SASL_SSL or mutual TLS, ACLs) and a three-node cluster.

Each broker is started by the project's own deploy/kafka/kafka.sh, on ports of its own next to
the plain test broker's (STATUSFLOW_TEST_KAFKA_PORT + 20 for SASL_SSL, + 40 for the cluster, + 60
for mutual TLS, + 80 for a plain one tests may kill), with throw-away data.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stream.config import Secret, Settings
from stream.kafka.acls import Acl, acl_commands
from stream.kafka.client import kafka_client_options
from stream.kafka.protocol import OPERATION_CODES
from tests.kafka_fixtures import KAFKA_SH, Pipeline, pipeline_on

# Users made at format time besides admin and statusflow: one to hold fewer ACLs than it needs.
EXTRA_USERS = "restricted"


def _test_port(offset: int) -> int:
    return int(os.environ.get("STATUSFLOW_TEST_KAFKA_PORT", "19092")) + offset


@dataclass(frozen=True)
class LocalKafka:
    """A running kafka.sh broker or cluster, and how to reach it as each of its users."""

    env: dict[str, str]
    data: Path
    broker: str

    @property
    def security(self) -> str:
        """kafka.sh's mode: plaintext, sasl_ssl or ssl (mutual TLS)."""
        return self.env.get("STATUSFLOW_KAFKA_SECURITY", "plaintext")

    def settings(self, user: str = "admin", **changes: Any) -> Settings:
        """Return client settings reaching the cluster as ``user`` (SASL_SSL, or SSL with ``user``'s certificate)."""
        if self.security == "plaintext":
            return Settings(broker=self.broker, **changes)
        if self.security == "ssl":
            tls = self.data / "tls"
            return Settings(
                broker=self.broker,
                security_protocol="SSL",
                ssl_cafile=str(tls / "ca.pem"),
                ssl_certfile=str(tls / f"{user}.pem"),
                ssl_keyfile=str(tls / f"{user}.key"),
                **changes,
            )
        return Settings(
            broker=self.broker,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=user,
            sasl_password=Secret(self.password(user)),
            ssl_cafile=str(self.data / "tls" / "ca.pem"),
            **changes,
        )

    def password(self, user: str) -> str:
        """Return the password kafka.sh generated for ``user``."""
        return (self.data / "secrets" / f"{user}.password").read_text().strip()

    def worker_env(self, user: str) -> dict[str, str]:
        """Return the variables that make a worker log in as ``user`` (its password file, or its certificate)."""
        if self.security == "ssl":
            tls = self.data / "tls"
            return {
                "STATUSFLOW_SSL_CERTFILE": str(tls / f"{user}.pem"),
                "STATUSFLOW_SSL_KEYFILE": str(tls / f"{user}.key"),
            }
        return {
            "STATUSFLOW_SASL_USERNAME": user,
            "STATUSFLOW_SASL_PASSWORD": "",
            "STATUSFLOW_SASL_PASSWORD_FILE": str(self.data / "secrets" / f"{user}.password"),
        }

    def grant_with_kafka_acls(self, acls: list[Acl], user: str) -> None:
        """Add ``acls`` for ``User:user`` with kafka-acls (``kafka.sh acl``), as the admin: what the README shows."""
        for command in acl_commands(acls, f"User:{user}"):
            subprocess.run([str(KAFKA_SH), "acl", *command], env=self.env, check=True, timeout=120, capture_output=True)

    def grant(self, acls: list[Acl], principal: str) -> None:
        """
        Add ``acls`` for ``principal`` (``User:...``) through the admin protocol, as the admin.

        The same broker requests kafka-acls sends, without a JVM start per command (about 10 s
        each on this machine). Returns once the broker serving the clients lists them all.
        """
        asyncio.run(_create_acls(self.settings("admin"), acls, principal))

    def run(self, *command: str) -> str:
        """Run a kafka.sh command against this cluster; return its output."""
        done = subprocess.run([str(KAFKA_SH), *command], env=self.env, check=True, timeout=300, capture_output=True)
        return done.stdout.decode()


# Kafka's codes: resource types, the literal pattern, "allow", and "any" for filters.
_RESOURCE_TYPES = {"topic": 2, "group": 3}
_LITERAL, _ALLOW, _ANY = 3, 3, 1


async def _create_acls(settings: Settings, acls: list[Acl], principal: str) -> None:
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest

    client = AIOKafkaClient(**kafka_client_options(settings))
    await client.bootstrap()
    try:
        node = client.get_random_node()
        for acl in acls:
            kind, operation = _RESOURCE_TYPES[acl.kind], OPERATION_CODES[acl.operation]
            request = CreateAclsRequest(kind, acl.name, _LITERAL, principal, "*", operation, _ALLOW)
            response = await client.send(node, request)
            assert [0] == [r[0] for r in response.creation_responses], response
        # Created by the controller, applied by each broker a moment later: wait until it has them.
        deadline = time.monotonic() + 30
        while True:
            listing = DescribeAclsRequest(_ANY, None, _ANY, principal, None, _ANY, _ANY)
            response = await client.send(node, listing)
            held = {(kind, name, a[2]) for kind, name, _, entries in response.resources for a in entries}
            wanted = {(_RESOURCE_TYPES[a.kind], a.name, OPERATION_CODES[a.operation]) for a in acls}
            if wanted <= held:
                return
            assert time.monotonic() < deadline, f"ACLs not applied after 30 s: {sorted(wanted - held)}"
            await asyncio.sleep(0.1)
    finally:
        await client.close()


def _start(tmp: Path, port: int, **variables: str) -> Iterator[LocalKafka]:
    env = {**os.environ, "STATUSFLOW_KAFKA_PORT": str(port), "STATUSFLOW_KAFKA_DATA": str(tmp), **variables}
    subprocess.run([str(KAFKA_SH), "start"], env=env, check=True, timeout=600)
    broker = subprocess.run(
        [str(KAFKA_SH), "bootstrap"], env=env, check=True, capture_output=True, timeout=30
    ).stdout.decode()
    try:
        yield LocalKafka(env, tmp, broker.strip())
    finally:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, check=False, timeout=180)


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """Start a single SASL_SSL broker: throw-away CA, SCRAM-SHA-512 users admin, statusflow, restricted; ACLs on."""
    tmp = tmp_path_factory.mktemp("kafka-secured")
    yield from _start(tmp, _test_port(20), STATUSFLOW_KAFKA_SECURITY="sasl_ssl", STATUSFLOW_KAFKA_USERS=EXTRA_USERS)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """Start three KRaft nodes (broker+controller each) on one machine, small heaps."""
    tmp = tmp_path_factory.mktemp("kafka-cluster")
    heap = os.environ.get("STATUSFLOW_KAFKA_CLUSTER_HEAP", "384m")
    yield from _start(tmp, _test_port(40), STATUSFLOW_KAFKA_NODES="3", STATUSFLOW_KAFKA_HEAP=heap)


@pytest.fixture(scope="module")
def mtls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """Start a single SSL broker that requires client certificates (CN=admin, statusflow, restricted); ACLs on."""
    tmp = tmp_path_factory.mktemp("kafka-mtls")
    heap = os.environ.get("STATUSFLOW_KAFKA_CLUSTER_HEAP", "384m")  # one module's broker: small
    yield from _start(
        tmp,
        _test_port(60),
        STATUSFLOW_KAFKA_SECURITY="ssl",
        STATUSFLOW_KAFKA_USERS=EXTRA_USERS,
        STATUSFLOW_KAFKA_HEAP=heap,
    )


@pytest.fixture(scope="module")
def disposable_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """Start a plain single broker that a test may kill (port + 80), for its module only, small heap."""
    tmp = tmp_path_factory.mktemp("kafka-disposable")
    heap = os.environ.get("STATUSFLOW_KAFKA_CLUSTER_HEAP", "384m")
    yield from _start(tmp, _test_port(80), STATUSFLOW_KAFKA_HEAP=heap)


@pytest.fixture
def mtls_pipeline(mtls_kafka: LocalKafka, tmp_path: Path) -> Iterator[Pipeline]:
    """Return a fresh pipeline on the mutual-TLS broker; its own clients (produce, read) are the admin."""
    yield from pipeline_on(mtls_kafka.settings("admin"), tmp_path)


@pytest.fixture
def secured_pipeline(secured_kafka: LocalKafka, tmp_path: Path) -> Iterator[Pipeline]:
    """Return a fresh pipeline on the secured broker; its own clients (produce, read) are the admin."""
    yield from pipeline_on(secured_kafka.settings("admin"), tmp_path)
