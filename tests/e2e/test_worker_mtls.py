"""The worker over mutual TLS (SSL, client certificates required, ACLs): parity, and no certificate."""

from __future__ import annotations

import pytest

from stream.kafka.acls import worker_acls
from tests.e2e.test_worker_kafka import offline, sample
from tests.e2e.test_worker_secured import run_worker
from tests.kafka_fixtures import Pipeline
from tests.secured_fixtures import LocalKafka

pytestmark = pytest.mark.kafka


def test_a_worker_logging_in_with_its_certificate_resolves_exactly_as_offline(
    mtls_pipeline: Pipeline, mtls_kafka: LocalKafka
) -> None:
    """STATUSFLOW_SSL_CAFILE/CERTFILE/KEYFILE, principal User:CN=statusflow holding only the worker's ACLs: parity."""
    lines = sample(500, 9, seed=31)[:4000]
    expected = offline(lines)
    mtls_kafka.grant(worker_acls(mtls_pipeline.settings, creates_topics=False), "User:CN=statusflow")
    mtls_pipeline.worker_env = mtls_kafka.worker_env("statusflow")
    worker = mtls_pipeline.start_worker()

    mtls_pipeline.produce(lines)

    mtls_pipeline.wait_for(
        lambda: mtls_pipeline.latest_states() == expected,
        180,
        "the mutual-TLS stream to match the offline result",
        lambda: mtls_pipeline.differences(expected),
    )
    assert worker.process.poll() is None
    assert 0 == worker.stop()


def test_without_a_client_certificate_the_worker_ends_within_10_s_with_one_line(mtls_pipeline: Pipeline) -> None:
    """The broker requires a certificate and gets none: exit 1, one line naming the cause and the settings."""
    env = {"STATUSFLOW_SSL_CERTFILE": "", "STATUSFLOW_SSL_KEYFILE": ""}

    code, seconds, stderr = run_worker(mtls_pipeline, env)

    assert (1, True) == (code, seconds < 10), stderr
    line = (
        f"statusflow worker: cannot start: TLS to {mtls_pipeline.settings.broker} refused: the broker requires "
        "a client certificate (mutual TLS: set STATUSFLOW_SSL_CERTFILE and STATUSFLOW_SSL_KEYFILE)"
    )
    assert [line] == stderr.strip().splitlines()


def test_a_certificate_lacking_an_acl_is_named_by_its_subject(mtls_pipeline: Pipeline, mtls_kafka: LocalKafka) -> None:
    """The principal of a certificate is its subject: the missing ACL's line names User:CN=restricted."""
    s = mtls_pipeline.settings
    acls = [acl for acl in worker_acls(s, creates_topics=False) if (acl.operation, acl.name) != ("Write", s.dlq_topic)]
    mtls_kafka.grant(acls, "User:CN=restricted")

    code, seconds, stderr = run_worker(mtls_pipeline, mtls_kafka.worker_env("restricted"))

    assert (1, True) == (code, seconds < 10), stderr
    line = f"statusflow worker: cannot start: principal User:CN=restricted lacks Write on topic {s.dlq_topic} "
    assert [line + "(README, 'Least privilege')"] == stderr.strip().splitlines()
